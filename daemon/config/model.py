"""What loading the configuration produces: settings, where each came from, and problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from closte_sync.daemon.events import Level
from closte_sync.daemon.settings import Settings

OriginKind = Literal["default", "file", "env", "wp-config", "discovered"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names each bad place."""


@dataclass(frozen=True)
class ValueOrigin:
    """Where a setting's value came from."""

    kind: OriginKind
    path: Path | None = None  # the TOML file, wp-config.php, or the discovered folder
    line: int | None = None
    variable: str | None = None  # the environment variable
    detail: str | None = None  # e.g. the wp-config constants the value was built from

    def __str__(self) -> str:
        if self.kind == "default":
            return "default"
        if self.kind == "env":
            return f"env {self.variable}"
        where = str(self.path) if self.line is None else f"{self.path}:{self.line}"
        label = {"file": "file", "wp-config": "wp-config.php", "discovered": "discovered"}
        text = f"{label[self.kind]} {where}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class ConfigProblem:
    """A non-fatal finding; the message names its place (file:line, key, variable)."""

    level: Level  # ERROR: something will not work; WARNING: suspicious; INFO: a note
    message: str

    def __str__(self) -> str:
        return f"{self.level.value}: {self.message}"


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    origins: Mapping[str, ValueOrigin]  # dotted key -> where it came from
    problems: tuple[ConfigProblem, ...]
    config_file: Path | None
    wp_config: Path | None
