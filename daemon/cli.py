"""The `closte-sync` command: one entry point, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when used, so `closte-sync config` does not pay for the TUI or the sandbox.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Protocol, cast

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "config": (
        "closte_sync.daemon.commands.show_config",
        "print the effective configuration and where each value came from",
    ),
    "doctor": (
        "closte_sync.daemon.commands.doctor",
        "check everything a new installation needs, with the fix for each failure",
    ),
    "closte": (
        "closte_sync.daemon.commands.closte",
        "talk to the Closte API by hand: add, remove, list, test",
    ),
    "sandbox": (
        "closte_sync.sandbox.command",
        "run the built-in Closte sandbox (API, TLS edge, DNS) on loopback",
    ),
    "daemon": (
        "closte_sync.daemon.commands.daemon",
        "run the daemon in the foreground until stopped (systemd Type=notify)",
    ),
    "once": (
        "closte_sync.daemon.commands.once",
        "one pass and one round of due checks; exit 0 only when all is in sync",
    ),
    "demo": (
        "closte_sync.daemon.commands.demo",
        "read the sources and sync them to the built-in sandbox, start to finish",
    ),
    "status": (
        "closte_sync.daemon.commands.status",
        "the running daemon's state; exits 1 when it is behind or holds removals back",
    ),
    "logs": (
        "closte_sync.daemon.commands.logs",
        "the daemon's event log (--follow for new events)",
    ),
    "domains": (
        "closte_sync.daemon.commands.domains",
        "every domain with its stage, tries, checks and last error",
    ),
    "retry": (
        "closte_sync.daemon.commands.retry",
        "check a domain again now, with its tries reset",
    ),
    "set": (
        "closte_sync.daemon.commands.set_value",
        "change a setting live: interval (10..300 s), dns-tries, ssl-tries",
    ),
    "release": (
        "closte_sync.daemon.commands.release",
        "let removals the guard held back go ahead",
    ),
    "tui": (
        "closte_sync.daemon.commands.tui",
        "the terminal UI: domains, logs, troubleshooting, settings",
    ),
    "install-service": (
        "closte_sync.daemon.commands.install_service",
        "install the systemd unit, user, config skeleton and folders (--user: no root)",
    ),
}


class SubcommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _version() -> str:
    try:
        return metadata.version("closte-sync")
    except metadata.PackageNotFoundError:  # running from a tree that is not installed
        return "unknown"


def _load(name: str) -> SubcommandModule:
    return cast(SubcommandModule, importlib.import_module(SUBCOMMANDS[name][0]))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="closte-sync",
        description="Keep a WordPress multisite's mapped domains live on Closte hosting.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="configuration file (default /etc/closte-sync/config.toml, if it exists)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        # Only the chosen subcommand's module is imported to add its arguments.
        if name == only:
            _load(name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in SUBCOMMANDS), None)
    parser = build_parser(only=chosen)
    args = parser.parse_args(args_list)
    from closte_sync.daemon.control.cli_support import apply_instance_config

    problem = apply_instance_config(args)
    if problem is not None:
        parser.error(problem)
    try:
        return _load(args.command).run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
