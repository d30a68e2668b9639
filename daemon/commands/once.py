"""`closte-sync once`: one pass and one round of due checks, then exit.

Exit 0 only when Closte holds exactly what is desired and no domain failed; 1 otherwise.
``--dry-run`` plans and prints without calling Closte (nor writing the ledger);
``--upsert-only`` never removes; ``--release PLAN_ID`` lets the held removals with that id
(and only those) go ahead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from closte_sync.daemon.config import ConfigError, load_config
from closte_sync.daemon.control.cli_support import add_instance_config
from closte_sync.daemon.events import Level
from closte_sync.daemon.reconcile import PassReport
from closte_sync.daemon.service.console import ConsoleSink
from closte_sync.daemon.service.engine import Engine
from closte_sync.daemon.service.stage_runner import RoundReport
from closte_sync.daemon.store import Stage
from closte_sync.shared.domains import display


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_instance_config(parser)
    parser.add_argument("--dry-run", action="store_true", help="plan only; call nothing")
    parser.add_argument("--upsert-only", action="store_true", help="add, never remove")
    parser.add_argument("--release", metavar="PLAN_ID", help="release the held plan PLAN_ID")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--quiet", action="store_true", help="no event lines on stderr")


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"closte-sync once: {exc}", file=sys.stderr)
        return 2
    settings = loaded.settings
    connection = settings.database.connection
    clustered = connection is not None and connection.kind == "mysql" and settings.cluster.enabled
    if clustered and not args.dry_run:
        # Only the holder of the cluster's lock may call Closte; `once` does not take it.
        print(
            "closte-sync once: [cluster] enabled is on, so only the leading daemon calls"
            " Closte; use `closte-sync status` and `closte-sync release` on it, or"
            " `once --dry-run` here (or set CLOSTE_SYNC_CLUSTER_ENABLED=false when no"
            " daemon runs)",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_once(args, loaded))


async def _once(args: argparse.Namespace, loaded: Any) -> int:
    console = ConsoleSink(min_level=Level.ERROR if args.quiet else Level.INFO)
    console.register_secret(loaded.settings.closte.api_key)
    if loaded.settings.database.connection is not None:
        console.register_secret(loaded.settings.database.connection.password)
    async with Engine.open(loaded, (console,)) as engine:
        await engine.read_sources()
        report = await engine.run_pass(
            dry_run=args.dry_run, upsert_only=args.upsert_only, release=args.release
        )
        checks = RoundReport() if args.dry_run else await engine.run_checks()
        stages = {s.domain: s.stage for s in await engine.store.stages.all()}
    failed = sorted(n for n, s in stages.items() if s in (Stage.FAILED, Stage.SSL_FAILED))
    ok = report.in_sync and not failed
    if args.json:
        print(json.dumps(_as_json(report, checks, failed, ok), indent=2))
    else:
        _print(report, checks, failed, ok)
    return 0 if ok else 1


def _as_json(report: PassReport, checks: RoundReport, failed: list[str], ok: bool) -> Any:
    plan = report.plan
    return {
        "in_sync": ok,
        "error": report.error,
        "dry_run": report.dry_run,
        "add": list(plan.add) if plan else [],
        "remove": list(plan.remove) if plan else [],
        "held_plan": (
            {"id": plan.held.id, "domains": list(plan.held.domains), "reason": plan.held.reason}
            if plan and plan.held
            else None
        ),
        "held_removals": list(report.held_removals),
        "skipped_removals": list(report.skipped_removals),
        "deferred": list(report.deferred),
        "refused": list(report.refused),
        "results": [r.to_json() for r in report.results],
        "stopped": report.stopped,
        "checked": checks.checked,
        "moved": {k: str(v) for k, v in checks.moved.items()},
        "failed_stages": failed,
    }


def _print(report: PassReport, checks: RoundReport, failed: list[str], ok: bool) -> None:
    if report.error:
        print(f"pass failed: {report.error}")
    plan = report.plan
    if plan is not None:
        verb = "would" if report.dry_run else "did"
        print(
            f"plan ({verb}): add {len(plan.add)}, remove {len(plan.remove)}, keep {len(plan.keep)}"
        )
        for name in plan.add:
            print(f"  + {display(name)}")
        for name in plan.remove:
            print(f"  - {display(name)}")
        if plan.held is not None:
            print(f"held: {plan.held.reason}")
            for name in plan.held.domains:
                print(f"  ! {display(name)}")
    for name in report.held_removals:
        print(f"kept (its source cannot be read): {display(name)}")
    for name in report.skipped_removals:
        print(f"kept (--upsert-only): {display(name)}")
    for name in report.refused:
        print(f"refused by Closte (closte-sync retry {display(name)}): {display(name)}")
    for name in report.deferred:
        print(f"backing off after failures: {display(name)}")
    for result in report.failures:
        print(f"failed: {result.operation} {display(result.domain or '')}: {result.kind}")
    if report.stopped:
        print(f"stopped: {report.stopped}")
    for name, stage in sorted(checks.moved.items()):
        print(f"stage: {display(name)} -> {stage}")
    for name in failed:
        print(f"stage failed: {display(name)} (see `closte-sync logs --domain {display(name)}`)")
    print("in sync" if ok else "not in sync")
