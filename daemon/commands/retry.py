"""`closte-sync retry DOMAIN`: check a domain again now, with its tries reset."""

from __future__ import annotations

import argparse

from closte_sync.daemon.control.cli_support import add_common, run_action
from closte_sync.shared.protocol import Op


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("domain", metavar="DOMAIN")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    return run_action(args, Op.RETRY, domain=args.domain)
