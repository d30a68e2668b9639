"""`closte-sync status`: the running daemon's state in a few lines.

Exits 1 when the last good pass is older than ``--max-age`` (default: three check
intervals, at least ten minutes) or removals are held back, so a monitor can run it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from closte_sync.daemon.control.cli_support import (
    EXIT_FAILED,
    EXIT_OK,
    add_common,
    age,
    clock,
    print_json,
    role_text,
    run_with_client,
)
from closte_sync.daemon.control.client import ControlClient
from closte_sync.shared.protocol import Op

MIN_MAX_AGE_S = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="unhealthy when the last good pass is older (default: 3 intervals, min 600)",
    )


def run(args: argparse.Namespace) -> int:
    return run_with_client(args, lambda client: show(client, args, sys.stdout))


def problems_of(status: Mapping[str, Any], max_age: float | None) -> list[str]:
    """Why the daemon is unhealthy (empty when it is not)."""
    daemon = status.get("daemon", {})
    now = float(status.get("now", 0.0))
    interval = daemon.get("interval", {}).get("value") or 300
    limit = max_age if max_age is not None else max(3 * float(interval), MIN_MAX_AGE_S)
    problems: list[str] = []
    if daemon.get("role") == "standby":
        return problems  # a standby makes no passes: its leader does (see `role`)
    good = daemon.get("last_good_pass_at")
    if good is None:
        problems.append("no pass has succeeded yet")
    elif now - float(good) > limit:
        problems.append(f"the last good pass was {age(good, now)} (more than {limit:g} s)")
    held = daemon.get("held_plan")
    if held:
        problems.append(
            f"{len(held.get('domains', []))} removals are held back (plan {held.get('id')}); "
            f"check them, then `closte-sync release {held.get('id')}`"
        )
    return problems


async def show(client: ControlClient, args: argparse.Namespace, out: TextIO) -> int:
    status = await client.call(Op.STATUS)
    problems = problems_of(status, args.max_age)
    if args.json:
        print_json({**status, "healthy": not problems, "problems": problems}, out)
    else:
        out.write(as_text(status, problems) + "\n")
    return EXIT_FAILED if problems else EXIT_OK


def as_text(status: Mapping[str, Any], problems: list[str]) -> str:
    daemon = status.get("daemon", {})
    domains = status.get("domains", {})
    now = float(status.get("now", 0.0))
    interval = daemon.get("interval", {})
    tries = daemon.get("tries", {})
    lines = [
        f"closte-sync {daemon.get('version', '?')} (pid {daemon.get('pid', '?')})"
        + ("  - a pass is running" if daemon.get("pass_running") else ""),
        f"role:            {role_text(daemon, now)}",
        f"last pass:       {clock(daemon.get('last_pass_at'))} "
        f"({age(daemon.get('last_pass_at'), now)})",
        f"last good pass:  {clock(daemon.get('last_good_pass_at'))} "
        f"({age(daemon.get('last_good_pass_at'), now)})",
        f"check interval:  {interval.get('value', '?')} s (from {interval.get('origin', '?')})",
        f"tries limits:    dns {tries.get('dns_tries', '?')}, ssl {tries.get('ssl_tries', '?')}",
    ]
    for name, source in sorted(daemon.get("sources", {}).items()):
        state = "ok" if source.get("healthy") else "NOT HEALTHY"
        lines.append(f"source {name + ':':<9} {state}")
        lines += [f"    {problem}" for problem in source.get("problems", [])]
    by_stage = ", ".join(f"{k} {v}" for k, v in sorted(domains.get("by_stage", {}).items()))
    lines.append(f"domains:         {domains.get('total', 0)} ({by_stage or 'none'})")
    if domains.get("with_errors"):
        lines.append(f"                 {domains['with_errors']} with a failed Closte call")
    held = daemon.get("held_plan")
    if held:
        lines.append(f"held removals:   plan {held.get('id')}:")
        lines += [f"    {domain}" for domain in held.get("domains", [])]
    lines.append("")
    lines += [f"UNHEALTHY: {problem}" for problem in problems] or ["healthy"]
    return "\n".join(lines)
