"""`closte-sync doctor`: run every check and print pass/fail with the fix for each."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from closte_sync.daemon.control.cli_support import add_instance_config
from closte_sync.daemon.doctor import CheckResult, DoctorContext, Status, run_checks

_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.SKIP: "SKIP"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_instance_config(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    context = DoctorContext(config_path=args.config)
    results = asyncio.run(run_checks(context))
    if args.json:
        _print_json(results, context.notes)
    else:
        _print_table(results, context.notes)
    return 0 if all(r.status is Status.PASS for r in results) else 1


def _print_table(results: list[CheckResult], notes: list[str]) -> None:
    width = max(len(r.name) for r in results)
    for result in results:
        print(f"  {_MARK[result.status]}  {result.name:<{width}}  {result.detail}")
        if result.fix and result.status is Status.FAIL:
            print(f"        {'':<{width}}  fix: {result.fix}")
    if notes:
        print("\nnotes:")
        for note in notes:
            print(f"  - {note}")
    passed = sum(r.status is Status.PASS for r in results)
    verdict = "all checks passed" if passed == len(results) else "some checks failed"
    print(f"\n{passed} of {len(results)} checks passed: {verdict}.")
    sys.stdout.flush()


def _print_json(results: list[CheckResult], notes: list[str]) -> None:
    payload = {
        "ok": all(r.status is Status.PASS for r in results),
        "checks": [
            {"name": r.name, "status": str(r.status), "detail": r.detail, "fix": r.fix}
            for r in results
        ],
        "notes": notes,
    }
    print(json.dumps(payload, indent=2))
