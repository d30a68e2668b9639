"""`closte-sync config`: the effective configuration, one line per key, and where it came from.

Secrets show only their mask; the database connection shows ``describe()`` and, for MySQL,
the password's length (never any of its characters).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from closte_sync.daemon.config import ConfigError, LoadedConfig, load_config
from closte_sync.daemon.config.model import ValueOrigin
from closte_sync.daemon.config.schema import KEYS, settings_field
from closte_sync.daemon.control.cli_support import add_instance_config
from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.shared.secret import Secret

_FACTS = (
    "wordpress.config_path",
    "wordpress.multisite",
    "wordpress.subdomain_install",
    "wordpress.domain_current_site",
    "wordpress.table_prefix",
)


@dataclass(frozen=True)
class Row:
    key: str
    value: str | int | float | bool | list[str] | None  # safe to show: secrets are masked
    origin: ValueOrigin


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_instance_config(parser)
    parser.add_argument("--json", action="store_true", help="print the configuration as JSON")


def run(args: argparse.Namespace) -> int:
    config_path: Path | None = args.config
    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        print(f"closte-sync: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(as_json(loaded), indent=2, ensure_ascii=False))
    else:
        print(as_text(loaded))
    return 0


def rows(loaded: LoadedConfig) -> list[Row]:
    """Every key with a value that is safe to show, and its origin."""
    result = []
    for key in (*KEYS, *_FACTS):
        value: Any = loaded.settings
        for part in settings_field(key).split("."):
            value = getattr(value, part)
        origin = loaded.origins.get(key, ValueOrigin("default"))
        result.append(Row(key, _shown(value), origin))
    return result


def _shown(value: object) -> str | int | float | bool | list[str] | None:
    if isinstance(value, Secret):
        return value.masked if value else None
    if isinstance(value, DatabaseConnection):
        if value.kind == "mysql":
            return f"{value.describe()} password {value.password.masked}"
        return value.describe()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [str(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _text(value: str | int | float | bool | list[str] | None) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value) if value else "(none)"
    return str(value)


def as_text(loaded: LoadedConfig) -> str:
    table = [(row.key, _text(row.value), str(row.origin)) for row in rows(loaded)]
    key_width = max(len(key) for key, _, _ in table)
    value_width = min(48, max(len(value) for _, value, _ in table))
    lines = [
        f"config file: {loaded.config_file or '(none)'}",
        f"wp-config:   {loaded.wp_config or '(none)'}",
        "",
    ]
    lines += [
        f"{key:<{key_width}}  {value:<{value_width}}  {origin}".rstrip()
        for key, value, origin in table
    ]
    if loaded.problems:
        lines += ["", "problems:"]
        lines += [f"  {problem}" for problem in loaded.problems]
    return "\n".join(lines)


def as_json(loaded: LoadedConfig) -> dict[str, Any]:
    return {
        "config_file": str(loaded.config_file) if loaded.config_file else None,
        "wp_config": str(loaded.wp_config) if loaded.wp_config else None,
        "values": {
            row.key: {"value": row.value, "origin": str(row.origin), "source": row.origin.kind}
            for row in rows(loaded)
        },
        "problems": [
            {"level": problem.level.value, "message": problem.message}
            for problem in loaded.problems
        ],
    }
