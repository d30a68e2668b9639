"""`closte-sync retry DOMAIN`: check a domain again now, with its tries reset."""

from __future__ import annotations

import argparse
import sys

from closte_sync.daemon.control.cli_support import EXIT_OK, add_common, print_json, run_with_client
from closte_sync.daemon.control.client import ControlClient
from closte_sync.shared.protocol import Op


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", metavar="DOMAIN")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    async def body(client: ControlClient) -> int:
        result = await client.call(Op.RETRY, domain=args.domain)
        if args.json:
            print_json({"ok": True, **result}, sys.stdout)
        else:
            print(result["message"])
        return EXIT_OK

    return run_with_client(args, body)
