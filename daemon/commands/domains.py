"""`closte-sync domains [--stage S]`: every domain the daemon knows, one line each."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from closte_sync.daemon.control.cli_support import (
    EXIT_OK,
    add_common,
    age,
    clock,
    print_json,
    run_with_client,
)
from closte_sync.daemon.control.client import ControlClient
from closte_sync.shared.protocol import DomainRow, Op

STAGES = ("checking-dns", "checking-ssl-cert", "done", "done-without-ssl", "failed", "ssl-failed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--stage", choices=STAGES, help="only domains in this stage")
    parser.add_argument("--state", metavar="STATE", help="only domains in this ledger state")


def run(args: argparse.Namespace) -> int:
    return run_with_client(args, lambda client: show(client, args, sys.stdout))


async def show(client: ControlClient, args: argparse.Namespace, out: TextIO) -> int:
    filters = {k: v for k, v in (("stage", args.stage), ("state", args.state)) if v}
    result = await client.call(Op.DOMAINS, **filters)
    if args.json:
        print_json(result, out)
        return EXIT_OK
    rows = [DomainRow.from_json(item) for item in result["domains"]]
    out.write(as_table(rows, time.time()) + "\n")
    return EXIT_OK


def as_table(rows: list[DomainRow], now: float) -> str:
    if not rows:
        return "no domains"
    header = ("DOMAIN", "STATE", "STAGE", "TRIES", "LAST CHECK", "NEXT CHECK", "CERT", "NOTE")
    table = [header]
    for row in rows:
        tries = f"{row.tries}/{row.max_tries}" if row.max_tries else str(row.tries)
        note = row.last_error or row.last_summary
        table.append(
            (
                row.domain,
                row.state,
                row.stage or "-",
                tries,
                age(row.last_check_at, now),
                age(row.next_check_at, now),
                clock(row.cert_expires_at)[:10] if row.cert_expires_at else "-",
                note[:60],
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
        + "  "
        + line[-1]
        for line in table
    )
