"""`closte-sync release PLAN_ID`: let removals the guard held back go ahead.

The id is the one `closte-sync status` shows beside the domains it would remove, so an
operator always releases the plan they have seen.
"""

from __future__ import annotations

import argparse
import sys

from closte_sync.daemon.control.cli_support import EXIT_OK, add_common, print_json, run_with_client
from closte_sync.daemon.control.client import ControlClient
from closte_sync.shared.protocol import Op


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_id", metavar="PLAN_ID", help="as shown by `closte-sync status`")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    async def body(client: ControlClient) -> int:
        result = await client.call(Op.RELEASE, plan_id=args.plan_id)
        if args.json:
            print_json({"ok": True, **result}, sys.stdout)
        else:
            print(result["message"])
        return EXIT_OK

    return run_with_client(args, body)
