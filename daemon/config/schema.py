"""The configuration keys, their types and limits, derived from ``Settings`` itself.

Every field of the section dataclasses in ``closte_sync.daemon.settings`` is a key
(``[checks] interval_s``), so a field added there is configurable at once. The one
exception is ``database.connection``, which is set through ``database.url``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from closte_sync.daemon import settings as settings_module
from closte_sync.daemon.config.database import DatabaseUrlError, parse_database_url
from closte_sync.daemon.metrics.listen import parse_listen
from closte_sync.daemon.settings import Settings
from closte_sync.shared.domains import DomainError, normalize_domain
from closte_sync.shared.secret import Secret

ValueKind = Literal["str", "int", "float", "bool", "path", "list", "secret", "url"]
ENV_PREFIX: Final = "CLOSTE_SYNC_"
TOP_LEVEL_KEYS: Final = ("wordpress_root",)
# Sections of Settings that are read from wp-config.php, never configured.
_DERIVED_SECTIONS: Final = ("wordpress",)

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class ValueProblem(ValueError):
    """A value that does not fit its key; the message says what is expected."""


def _check_nameserver(text: str) -> None:
    host, port = text, None
    if text.startswith("["):  # [::1]:5353
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or None
    elif text.count(":") == 1:  # 127.0.0.1:5353
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueProblem(
            f"{text!r} is not a name server address (like 1.1.1.1 or 127.0.0.1:5353)"
        ) from None
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueProblem(f"{text!r} has a bad port")


def _check_ip(text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueProblem(f"{text!r} is not an IP address") from None


def _check_host(text: str) -> None:
    try:
        normalize_domain(text)
    except DomainError as exc:
        raise ValueProblem(str(exc)) from None


def _check_prefix(text: str) -> None:
    # WordPress itself refuses any other character in $table_prefix.
    if not re.fullmatch(r"[A-Za-z0-9_]+", text):
        raise ValueProblem(f"{text!r} may hold only letters, digits and underscores")


def _check_lock_name(text: str) -> None:
    # MySQL refuses lock names longer than 64 characters.
    if len(text) > 64:
        raise ValueProblem(f"{text[:20]!r}...: at most 64 characters (MySQL's limit)")


def _check_base_url(text: str) -> None:
    if not re.match(r"https?://[^/\s]+", text):
        raise ValueProblem(f"{text!r} is not an http:// or https:// URL")


def _check_listen(text: str) -> None:
    try:
        parse_listen(text)
    except ValueError as exc:
        raise ValueProblem(str(exc)) from None


# Limits beyond the type: (minimum, maximum); None for no bound.
RANGES: Final[dict[str, tuple[float | None, float | None]]] = {
    "closte.concurrency": (1, 64),
    "closte.rate_per_second": (0.01, 1000),
    "closte.timeout_s": (0.1, 600),
    "closte.connect_timeout_s": (0.1, 600),
    "closte.retry_budget": (0, 100),
    "closte.retry_base_s": (0.0, 3600),
    "closte.retry_max_s": (0.0, 86400),
    "closte.resync_s": (10.0, 86400),
    "database.network_id": (1, None),
    "database.poll_s": (0.05, 3600),
    "checks.interval_s": (settings_module.MIN_INTERVAL_S, settings_module.MAX_INTERVAL_S),
    "checks.dns_tries": (1, 1000),
    "checks.ssl_tries": (1, 1000),
    "checks.tls_port": (1, 65535),
    "guard.max_remove_share": (0.0, 1.0),
    "guard.min_held": (0, None),
    "store.retention_days": (1, None),
    "store.max_events": (1, None),
    "store.max_checks": (1, None),
    "cluster.retry_s": (0.1, 600),
}
CHECKS: Final[dict[str, Callable[[str], None]]] = {
    "closte.base_url": _check_base_url,
    "database.base_prefix": _check_prefix,
    "checks.nameservers": _check_nameserver,
    "checks.network_ips": _check_ip,
    "checks.network_hosts": _check_host,
    "metrics.listen": _check_listen,
    "cluster.lock_name": _check_lock_name,
}


@dataclass(frozen=True)
class Key:
    dotted: str  # "checks.interval_s", or "wordpress_root" at the top level
    kind: ValueKind
    optional: bool  # may be unset (None)
    secret: bool

    @property
    def section(self) -> str | None:
        return self.dotted.split(".")[0] if "." in self.dotted else None

    @property
    def name(self) -> str:
        return self.dotted.rsplit(".", 1)[-1]

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.dotted.replace(".", "_").upper()

    @property
    def toml_name(self) -> str:
        return f"[{self.section}] {self.name}" if self.section else self.name


def _kind_of(annotation: object) -> tuple[ValueKind, bool]:
    args = typing.get_args(annotation)
    optional = isinstance(annotation, types.UnionType) and type(None) in args
    if optional:
        (annotation,) = (a for a in args if a is not type(None))
    if typing.get_origin(annotation) is tuple:
        return "list", optional
    kinds: dict[object, ValueKind] = {
        str: "str",
        int: "int",
        float: "float",
        bool: "bool",
        Path: "path",
        Secret: "secret",
        settings_module.DatabaseConnection: "url",
    }
    return kinds[annotation], optional


def _section_keys() -> Iterator[Key]:
    hints = typing.get_type_hints(Settings, vars(settings_module))
    for field in dataclasses.fields(Settings):
        if field.name in _DERIVED_SECTIONS:
            continue
        if field.name in TOP_LEVEL_KEYS:
            kind, optional = _kind_of(hints[field.name])
            yield Key(field.name, kind, optional, secret=False)
            continue
        section_type = hints[field.name]
        section_hints = typing.get_type_hints(section_type, vars(settings_module))
        for sub in dataclasses.fields(section_type):
            kind, optional = _kind_of(section_hints[sub.name])
            name = "url" if kind == "url" else sub.name
            yield Key(f"{field.name}.{name}", kind, optional, secret=kind == "secret")


KEYS: Final[dict[str, Key]] = {key.dotted: key for key in _section_keys()}
KEYS_BY_ENV: Final[dict[str, Key]] = {key.env_var: key for key in KEYS.values()}
SECTIONS: Final = frozenset(key.section for key in KEYS.values() if key.section)
assert len(KEYS_BY_ENV) == len(KEYS), "two keys map to one environment variable"


def settings_field(dotted: str) -> str:
    """The Settings attribute behind a key (`database.url` is `database.connection`)."""
    return "database.connection" if dotted == "database.url" else dotted


def convert(
    key: Key,
    raw: object,
    *,
    from_env: bool,
    base_dir: Path,
    socket_candidates: Sequence[Path],
) -> object:
    """Turn a TOML value (or an environment string) into the key's typed value."""
    if from_env:
        assert isinstance(raw, str)
        raw = _from_text(key, raw)
    value = _typed(key, raw, base_dir=base_dir, socket_candidates=socket_candidates)
    _check(key, value)
    return value


def _from_text(key: Key, text: str) -> object:
    """An environment string as the TOML value it stands for."""
    stripped = text.strip()
    if key.kind == "int":
        try:
            return int(stripped)
        except ValueError:
            raise ValueProblem(f"expected a whole number, got {stripped!r}") from None
    if key.kind == "float":
        try:
            return float(stripped)
        except ValueError:
            raise ValueProblem(f"expected a number, got {stripped!r}") from None
    if key.kind == "bool":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueProblem(f"expected true or false, got {stripped!r}")
    if key.kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text if key.secret else stripped


def _typed(key: Key, raw: object, *, base_dir: Path, socket_candidates: Sequence[Path]) -> object:
    kind = key.kind
    if kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueProblem(f"expected a whole number, got {_shown(key, raw)}")
        return raw
    if kind == "float":
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueProblem(f"expected a number, got {_shown(key, raw)}")
        return float(raw)
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ValueProblem(f"expected true or false, got {_shown(key, raw)}")
        return raw
    if kind == "list":
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ValueProblem(f"expected a list of strings, got {_shown(key, raw)}")
        return tuple(raw)
    if not isinstance(raw, str):
        raise ValueProblem(f"expected a string, got {_shown(key, raw)}")
    if raw == "" and key.optional:
        return None  # an empty string unsets an optional key
    if kind == "secret":
        # Keys pasted into a shell or a TOML file often carry a stray space or newline;
        # no API key or password of ours starts or ends with white space.
        return Secret(raw.strip()) if raw.strip() else None
    if kind == "path":
        if not raw:
            raise ValueProblem("expected a path, got an empty string")
        path = Path(raw).expanduser()
        return path if path.is_absolute() else base_dir / path
    if kind == "url":
        try:
            return parse_database_url(raw, base_dir=base_dir, socket_candidates=socket_candidates)
        except DatabaseUrlError as exc:
            raise ValueProblem(str(exc)) from None
    return raw


def _check(key: Key, value: object) -> None:
    bounds = RANGES.get(key.dotted)
    if bounds is not None and isinstance(value, int | float):
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                raise ValueProblem(f"must be at least {low}, got {value}")
            raise ValueProblem(f"must be between {low} and {high}, got {value}")
    check = CHECKS.get(key.dotted)
    if check is not None and value is not None:
        for item in value if isinstance(value, tuple) else (value,):
            check(str(item))


def _shown(key: Key, raw: object) -> str:
    """A wrong value, described without ever showing a secret."""
    kind = {
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(raw), type(raw).__name__)
    if key.secret or key.kind == "url":
        return kind
    text = repr(raw)
    return f"{kind} ({text if len(text) <= 40 else text[:39] + '…'})"
