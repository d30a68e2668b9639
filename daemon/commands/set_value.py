"""`closte-sync set interval 30` (also dns-tries, ssl-tries): change a setting live.

The value is checked here first (interval 10..300 seconds), and again by the daemon. A
value set this way wins over the plugin's and the config file's until it is changed.
"""

from __future__ import annotations

import argparse
import sys

from closte_sync.daemon.control.cli_support import (
    EXIT_OK,
    EXIT_USAGE,
    add_common,
    print_error,
    print_json,
    run_with_client,
)
from closte_sync.daemon.control.client import ControlClient
from closte_sync.shared.protocol import Op, check_setting

NAMES = ("interval", "dns-tries", "ssl-tries")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "key", choices=NAMES, help="interval (seconds, 10..300), dns-tries, ssl-tries"
    )
    parser.add_argument("value", metavar="VALUE")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    try:
        key, value = check_setting(args.key, args.value)
    except ValueError as exc:
        print_error(args, "bad_args", str(exc), sys.stdout, sys.stderr)
        return EXIT_USAGE

    async def body(client: ControlClient) -> int:
        result = await client.call(Op.SET, key=key, value=value)
        if args.json:
            print_json({"ok": True, "key": key, "value": value, **result}, sys.stdout)
        else:
            print(result["message"])
        return EXIT_OK

    return run_with_client(args, body)
