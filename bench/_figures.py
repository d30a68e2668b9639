"""One benchmark figure as the JSON line bench/_report.py reads, and the table a script
prints before those lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def figure(
    name: str, value: float, unit: str, goal: float | None, better: str = "lower"
) -> dict[str, Any]:
    met = None if goal is None else (value <= goal if better == "lower" else value >= goal)
    return {
        "figure": name,
        "value": round(value, 4),
        "unit": unit,
        "goal": goal,
        "better": better,
        "met": met,
    }


def print_figures(figures: Sequence[dict[str, Any]], width: int = 34) -> None:
    """A table of the figures, then each as a JSON line."""
    print()
    print(f"{'figure':<{width}} {'value':>10} {'unit':<5} {'goal':>8}  met")
    for f in figures:
        goal = (
            "-" if f["goal"] is None else f"{'<=' if f['better'] == 'lower' else '>='} {f['goal']}"
        )
        met = "-" if f["met"] is None else ("yes" if f["met"] else "NO")
        print(f"{f['figure']:<{width}} {f['value']:>10} {f['unit']:<5} {goal:>8}  {met}")
    print()
    for f in figures:
        print(json.dumps(f))
