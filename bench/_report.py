"""One report for every benchmark, and the change between two reports.

    python bench/_report.py run               # every bench/*.py (not _*.py), one table,
                                              # and bench/results/<UTC time, ms>.json
    python bench/_report.py compare A B       # the change from report A to report B

Each benchmark prints a readable table, then one JSON object per figure, one per line:
``{"figure", "value", "unit", "goal", "better", "met"}`` (DESIGN.md, Benchmarks). Its output
is passed through as it comes; the figure lines are collected. A benchmark that exits
non-zero could not run: the report says so and ``run`` exits 1 after writing it.

``compare`` takes report paths, or names in the results folder (with or without ``.json``);
with no names it compares the two newest reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIGURE_KEYS = ("figure", "value", "unit")


def figure_of(line: str) -> dict[str, Any] | None:
    """The figure a benchmark's output line carries, or None for any other line."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not all(key in value for key in FIGURE_KEYS):
        return None
    return value


def benchmarks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def run_one(script: Path) -> tuple[int, list[dict[str, Any]]]:
    """Run one benchmark, echoing its output; its exit code and its figures."""
    print(f"== {script.name}", flush=True)
    figures: list[dict[str, Any]] = []
    with subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            found = figure_of(line)
            if found is not None:
                figures.append({**found, "bench": script.stem})
        code = process.wait()
    sys.stdout.flush()
    return code, figures


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _goal(figure: dict[str, Any]) -> str:
    goal = figure.get("goal")
    if goal is None:
        return "-"
    return f"{'>=' if figure.get('better') == 'higher' else '<='} {_number(goal)}"


def _met(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def report_table(report: dict[str, Any]) -> str:
    rows = [("bench", "figure", "measured", "unit", "goal", "met")]
    for f in report["figures"]:
        rows.append(
            (
                f.get("bench", ""),
                str(f["figure"]),
                _number(f["value"]),
                str(f["unit"]),
                _goal(f),
                _met(f.get("met")),
            )
        )
    lines = [_row(r, rows, frozenset({2, 4})) for r in rows]
    lines.append(
        f"{len(report['figures'])} figure(s) on {report['cores']} core(s)"
        f" ({report['machine']}, Python {report['python']})"
    )
    for name, outcome in report["benchmarks"].items():
        if outcome["exit"] != 0:
            lines.append(f"{name}: could not run (exit {outcome['exit']})")
    return "\n".join(lines)


def _row(row: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int]) -> str:
    """One line of a table; the columns in ``right`` (numbers) line up on the right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(row))]
    cells = [
        c.rjust(w) if i in right else c.ljust(w)
        for i, (c, w) in enumerate(zip(row, widths, strict=True))
    ]
    return "  ".join(cells).rstrip()


def run_all(bench_dir: Path, results_dir: Path) -> int:
    report: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "machine": platform.machine() or "unknown",
        "python": platform.python_version(),
        "benchmarks": {},
        "figures": [],
    }
    for script in benchmarks(bench_dir):
        code, figures = run_one(script)
        report["benchmarks"][script.stem] = {"exit": code, "figures": len(figures)}
        report["figures"].extend(figures)
    results_dir.mkdir(parents=True, exist_ok=True)
    # Milliseconds keep two quick runs apart, and names of one length sort by time.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
    path = results_dir / f"{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(report_table(report))
    print(f"written to {path}")
    return 0 if all(b["exit"] == 0 for b in report["benchmarks"].values()) else 1


def load_report(name: str, results_dir: Path) -> dict[str, Any]:
    for candidate in (Path(name), results_dir / name, results_dir / f"{name}.json"):
        if candidate.is_file():
            try:
                report = json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{candidate}: not a benchmark report ({exc})") from None
            if not isinstance(report, dict) or not isinstance(report.get("figures"), list):
                raise SystemExit(f"{candidate}: not a benchmark report (no 'figures' list)")
            report["_path"] = str(candidate)
            return report
    raise SystemExit(f"{name}: no such report (looked in {results_dir} too)")


def _verdict(before: float, after: float, better: str) -> str:
    if after == before:
        return "same"
    improved = after < before if better != "higher" else after > before
    return "better" if improved else "worse"


def compare_table(a: dict[str, Any], b: dict[str, Any]) -> str:
    def key(f: dict[str, Any]) -> tuple[str, str]:
        return (str(f.get("bench", "")), str(f["figure"]))

    old = {key(f): f for f in a["figures"]}
    new = {key(f): f for f in b["figures"]}
    rows = [("bench", "figure", "A", "B", "change", "unit", "verdict", "met A", "met B")]
    for k in sorted(old.keys() | new.keys()):
        fa, fb = old.get(k), new.get(k)
        unit = str((fb or fa or {}).get("unit", ""))
        va = fa["value"] if fa else None
        vb = fb["value"] if fb else None
        if isinstance(va, int | float) and isinstance(vb, int | float):
            change = f"{(vb - va) / va:+.1%}" if va else f"{vb - va:+.4g}"
            verdict = _verdict(float(va), float(vb), str((fb or fa or {}).get("better", "lower")))
        else:
            change, verdict = "-", "only in A" if fb is None else "only in B"
        met_a, met_b = (_met(f.get("met") if f else None) for f in (fa, fb))
        rows.append((k[0], k[1], _number(va), _number(vb), change, unit, verdict, met_a, met_b))
    lines = [f"A: {a['_path']} ({a.get('created', '?')}, {a.get('cores', '?')} cores)"]
    lines.append(f"B: {b['_path']} ({b.get('created', '?')}, {b.get('cores', '?')} cores)")
    if a.get("cores") != b.get("cores"):
        lines.append("note: the two runs had different core counts")
    lines += [_row(r, rows, frozenset({2, 3, 4})) for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=HERE)
    parser.add_argument("--results-dir", type=Path, default=HERE / "results")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run every benchmark and write one report")
    compare = commands.add_parser("compare", help="the change between two reports")
    compare.add_argument("reports", nargs="*", metavar="REPORT")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_all(args.bench_dir, args.results_dir)
    names: list[str] = list(args.reports)
    if not names:
        found = sorted(args.results_dir.glob("*.json"))
        if len(found) < 2:
            raise SystemExit(f"compare: need two reports in {args.results_dir}, found {len(found)}")
        names = [str(found[-2]), str(found[-1])]
    if len(names) != 2:
        raise SystemExit(f"compare: give two reports (A B), not {len(names)}")
    a, b = (load_report(n, args.results_dir) for n in names)
    print(compare_table(a, b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
