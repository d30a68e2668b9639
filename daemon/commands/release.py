"""`closte-sync release PLAN_ID`: let removals the guard held back go ahead.

The id is the one `closte-sync status` shows beside the domains it would remove, so an
operator always releases the plan they have seen.
"""

from __future__ import annotations

import argparse

from closte_sync.daemon.control.cli_support import add_common, run_action
from closte_sync.shared.protocol import Op


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_id", metavar="PLAN_ID", help="as shown by `closte-sync status`")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    return run_action(args, Op.RELEASE, plan_id=args.plan_id)
