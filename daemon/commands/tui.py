"""`closte-sync tui`: the terminal UI. It talks only to the daemon's control socket."""

from __future__ import annotations

import argparse
import sys

from closte_sync.daemon.control.cli_support import EXIT_OK, add_common, socket_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, json_flag=False)


def run(args: argparse.Namespace) -> int:
    from closte_sync.tui.app import ClosteSyncApp  # Textual loads only for this command

    ClosteSyncApp(socket_path(args, sys.stderr)).run()
    return EXIT_OK
