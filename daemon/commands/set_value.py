"""`closte-sync set interval 30` (also dns-tries, ssl-tries): change a setting live.

The value is checked here first (interval 10..300 seconds), and again by the daemon. A
value set this way wins over the plugin's and the config file's until it is changed.
"""

from __future__ import annotations

import argparse
import sys

from closte_sync.daemon.control.cli_support import (
    EXIT_USAGE,
    add_common,
    print_error,
    run_action,
)
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

    return run_action(args, Op.SET, {"key": key, "value": value}, key=key, value=value)
