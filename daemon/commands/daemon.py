"""`closte-sync daemon`: run in the foreground until stopped (systemd Type=notify)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from closte_sync.daemon.config import ConfigError, LoadedConfig, load_config
from closte_sync.daemon.control.cli_support import add_instance_config
from closte_sync.daemon.events import Level
from closte_sync.daemon.service.console import ConsoleSink
from closte_sync.daemon.service.daemon import Daemon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_instance_config(parser)
    parser.add_argument(
        "--log-level",
        choices=[level.value for level in Level],
        default="info",
        help="the lowest level written to stderr (the store keeps every level)",
    )


def run(args: argparse.Namespace) -> int:
    console = ConsoleSink(min_level=Level(args.log_level))

    def load() -> LoadedConfig:
        loaded = load_config(args.config)
        console.register_secret(loaded.settings.closte.api_key)
        if loaded.settings.database.connection is not None:
            console.register_secret(loaded.settings.database.connection.password)
        return loaded

    try:
        load()  # a bad configuration is reported before anything starts
    except ConfigError as exc:
        print(f"closte-sync daemon: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(Daemon(load, sinks=(console,)).run())
