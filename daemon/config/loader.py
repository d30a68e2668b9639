"""Build ``Settings`` from layers, lowest first: defaults < wp-config.php < TOML < environment.

With no TOML file and no environment, a WordPress root (given, or found by walking up from
the working directory) and an ordinary wp-config.php are enough: the API key, database and
table prefix are read from wp-config.php. Bad values in the TOML file or the environment are
fatal (:class:`ConfigError`, naming every bad place at once); what is merely doubtful is a
:class:`ConfigProblem` in the result.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from closte_sync.daemon.config.database import (
    DEFAULT_SOCKET_CANDIDATES,
    mysql_connection,
    parse_db_host,
)
from closte_sync.daemon.config.discovery import WP_CONFIG, discover_root, wp_config_for_root
from closte_sync.daemon.config.model import ConfigError, ConfigProblem, LoadedConfig, ValueOrigin
from closte_sync.daemon.config.schema import (
    ENV_PREFIX,
    KEYS,
    KEYS_BY_ENV,
    SECTIONS,
    Key,
    ValueProblem,
    convert,
    settings_field,
)
from closte_sync.daemon.config.wpconfig import (
    TABLE_PREFIX,
    Defined,
    Unreadable,
    WpConfig,
    php_truthy,
    read_wp_config,
)
from closte_sync.daemon.events import Level
from closte_sync.daemon.settings import (
    DEFAULT_CONFIG_PATH,
    DatabaseConnection,
    Settings,
    WordPressFacts,
)
from closte_sync.shared.domains import DomainError, normalize_domain
from closte_sync.shared.secret import Secret

# A layer: dotted key -> (typed value, where it came from).
Layer = dict[str, tuple[Any, ValueOrigin]]

_DEFAULT: Final = ValueOrigin("default")
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_MYSQL_CONSTANTS: Final = ("DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST")
_SQLITE_FILE: Final = ".ht.sqlite"
_NEEDED: Final = frozenset({"closte.api_key", "database.url", "database.base_prefix"})
_FACT_CONSTANTS: Final = {
    "wordpress.multisite": "MULTISITE",
    "wordpress.subdomain_install": "SUBDOMAIN_INSTALL",
    "wordpress.domain_current_site": "DOMAIN_CURRENT_SITE",
    "wordpress.table_prefix": TABLE_PREFIX,
}


def load_config(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    socket_candidates: Sequence[Path] | None = None,
    default_config_path: Path = DEFAULT_CONFIG_PATH,
) -> LoadedConfig:
    """The effective configuration. Raises ConfigError when the file or environment is bad.

    ``config_path`` must exist when given; otherwise ``default_config_path`` is read when it
    exists. ``env=None`` means ``os.environ``; ``cwd=None`` means the working directory.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    candidates = (
        DEFAULT_SOCKET_CANDIDATES if socket_candidates is None else tuple(socket_candidates)
    )
    problems: list[ConfigProblem] = []
    errors: list[str] = []

    config_file = _choose_config_file(config_path, default_config_path)
    file_layer = _read_toml(config_file, candidates, errors) if config_file else {}
    env_layer = _read_env(env, cwd, candidates, errors, problems)
    if errors:
        raise ConfigError("\n".join(errors))
    explicit = {**file_layer, **env_layer}

    root, wp_config_path, root_origin = _wordpress_root(explicit, cwd, problems)
    wp_layer: Layer = {}
    facts = WordPressFacts()
    fact_origins: dict[str, ValueOrigin] = {}
    if root is not None and wp_config_path is not None:
        wp = read_wp_config(wp_config_path)
        wp_layer, facts, fact_origins = _read_wp_layer(wp, root, explicit, candidates, problems)

    values: dict[str, Any] = {key: _default(key) for key in KEYS}
    origins: dict[str, ValueOrigin] = dict.fromkeys(KEYS, _DEFAULT)
    for layer in (wp_layer, file_layer, env_layer):
        for key, (value, origin) in layer.items():
            values[key] = value
            origins[key] = origin
    if root is not None and root_origin is not None:
        values["wordpress_root"] = root
        origins["wordpress_root"] = root_origin
    origins.update(fact_origins)

    return LoadedConfig(
        settings=_build_settings(values, facts),
        origins=origins,
        problems=tuple(problems),
        config_file=config_file,
        wp_config=wp_config_path,
    )


# -- the TOML file ---------------------------------------------------------------------------


def _choose_config_file(config_path: Path | None, default_path: Path) -> Path | None:
    if config_path is None:
        return default_path if default_path.is_file() else None
    if not config_path.is_file():
        what = "is a folder" if config_path.is_dir() else "does not exist"
        raise ConfigError(f"{config_path}: the configuration file {what}")
    return config_path


def _read_toml(path: Path, candidates: Sequence[Path], errors: list[str]) -> Layer:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read the configuration file: {reason}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        where = f"{path}:{position.group(1)}:{position.group(2)}" if position else str(path)
        detail = _TOML_POSITION.sub("", message).strip()
        raise ConfigError(f"{where}: TOML syntax error: {detail}") from None

    layer: Layer = {}
    base_dir = path.parent

    def take(dotted: str, raw: object, section: str | None, name: str) -> None:
        line = _key_line(text, section, name)
        where = f"{path}:{line}" if line else str(path)
        key = KEYS.get(dotted)
        if key is None:
            errors.append(f"{where}: {_unknown(dotted, section)}")
            return
        try:
            value = convert(
                key, raw, from_env=False, base_dir=base_dir, socket_candidates=candidates
            )
        except ValueProblem as exc:
            errors.append(f"{where}: {key.toml_name}: {exc}")
            return
        layer[dotted] = (value, ValueOrigin("file", path, line))

    for name, raw in data.items():
        if name in SECTIONS:
            if not isinstance(raw, dict):
                line = _key_line(text, None, name)
                errors.append(f"{path}:{line or '?'}: {name} must be a [{name}] table")
                continue
            for sub, sub_raw in raw.items():
                take(f"{name}.{sub}", sub_raw, name, sub)
        elif isinstance(raw, dict):
            line = _key_line(text, None, name)
            hint = difflib.get_close_matches(name, sorted(SECTIONS), n=1)
            suggestion = f"did you mean [{hint[0]}]?" if hint else f"known: {_known_sections()}"
            errors.append(f"{path}:{line or '?'}: unknown section [{name}] ({suggestion})")
        else:
            take(name, raw, None, name)
    return layer


def _known_sections() -> str:
    return ", ".join(f"[{section}]" for section in sorted(SECTIONS))


def _key_line(text: str, section: str | None, name: str) -> int | None:
    """The line where `name = ...` is set in [section] (best effort; None when unsure)."""
    current: str | None = None
    key = re.compile(r"\s*(?:\"" + re.escape(name) + r"\"|" + re.escape(name) + r")\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header.group(1).strip("\"'")
            if section is None and current == name:
                return number
        elif current == section and key.match(line):
            return number
    return None


def _unknown(dotted: str, section: str | None) -> str:
    if section is None and dotted not in SECTIONS:
        known = sorted({*SECTIONS, *(k for k in KEYS if "." not in k)})
        hint = difflib.get_close_matches(dotted, known, n=1)
        return f"unknown key {dotted!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    name = dotted.split(".", 1)[1]
    names = [k.split(".", 1)[1] for k in KEYS if k.startswith(f"{section}.")]
    hint = difflib.get_close_matches(name, names, n=1)
    suffix = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(names)})"
    return f"unknown key {name!r} in [{section}]" + suffix


# -- the environment -----------------------------------------------------------------------


def _read_env(
    env: Mapping[str, str],
    cwd: Path,
    candidates: Sequence[Path],
    errors: list[str],
    problems: list[ConfigProblem],
) -> Layer:
    layer: Layer = {}
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX):
            continue
        key = KEYS_BY_ENV.get(variable)
        if key is None:
            # Not fatal: the environment is shared, but a typo deserves a word.
            hint = difflib.get_close_matches(variable, list(KEYS_BY_ENV), n=1)
            problems.append(
                ConfigProblem(
                    Level.WARNING,
                    f"environment variable {variable} is not a closte-sync setting (ignored)"
                    + (f"; did you mean {hint[0]}?" if hint else ""),
                )
            )
            continue
        try:
            value = convert(
                key, env[variable], from_env=True, base_dir=cwd, socket_candidates=candidates
            )
        except ValueProblem as exc:
            errors.append(f"environment variable {variable}: {exc}")
            continue
        layer[key.dotted] = (value, ValueOrigin("env", variable=variable))
    return layer


# -- WordPress -----------------------------------------------------------------------------


def _wordpress_root(
    explicit: Layer, cwd: Path, problems: list[ConfigProblem]
) -> tuple[Path | None, Path | None, ValueOrigin | None]:
    if "wordpress_root" in explicit:
        root, origin = explicit["wordpress_root"]
        if root is None:
            return None, None, None
        wp_config = wp_config_for_root(root) if root.is_dir() else None
        if wp_config is None:
            state = "has no wp-config.php, nor one folder up" if root.is_dir() else "is no folder"
            problems.append(
                ConfigProblem(Level.ERROR, f"wordpress_root {root} (from {origin}) {state}")
            )
        return root, wp_config, origin
    found = discover_root(cwd)
    if found is None:
        problems.append(
            ConfigProblem(
                Level.INFO,
                f"no {WP_CONFIG} in {cwd} or any folder above it; set wordpress_root "
                f"or {KEYS['wordpress_root'].env_var} to read the API key and database from it",
            )
        )
        return None, None, None
    root, wp_config = found
    return root, wp_config, ValueOrigin("discovered", root, detail=f"walking up from {cwd}")


class _WpReader:
    """Turns the constants of one wp-config.php into a settings layer."""

    def __init__(self, wp: WpConfig, explicit: Layer, problems: list[ConfigProblem]) -> None:
        self.wp = wp
        self.explicit = explicit
        self.problems = problems
        self.layer: Layer = {}

    def origin(self, *names: str, detail: str | None = None) -> ValueOrigin:
        found = [d for name in names if (d := self.wp.get(name)) is not None]
        line = min((d.line for d in found), default=None)
        return ValueOrigin("wp-config", self.wp.path, line, detail=detail or ", ".join(names))

    def literal(self, name: str, key: str | None) -> Defined | None:
        """The literal definition of ``name``; an unreadable one is reported against ``key``."""
        found = self.wp.get(name)
        if isinstance(found, Unreadable):
            self.report_unreadable(found, KEYS[key] if key else None)
            return None
        return found

    def report_unreadable(self, found: Unreadable, key: Key | None) -> None:
        where = f"{self.wp.path}:{found.line}: {found.name}: {found.reason}"
        if key is None:
            self.problems.append(ConfigProblem(Level.WARNING, where))
        elif key.dotted in self.explicit:
            origin = self.explicit[key.dotted][1]
            self.problems.append(
                ConfigProblem(Level.INFO, f"{where}; {key.toml_name} from {origin} is used")
            )
        else:
            # Without the API key, the database or the prefix the daemon cannot do its job.
            level = Level.ERROR if key.dotted in _NEEDED else Level.WARNING
            self.problems.append(ConfigProblem(level, f"{where}; set {self.hint_for(key)} instead"))

    @staticmethod
    def hint_for(key: Key) -> str:
        return f"{key.toml_name} or {key.env_var}"

    def set(self, key: str, value: Any, origin: ValueOrigin) -> None:
        self.layer[key] = (value, origin)


def _read_wp_layer(
    wp: WpConfig,
    root: Path,
    explicit: Layer,
    candidates: Sequence[Path],
    problems: list[ConfigProblem],
) -> tuple[Layer, WordPressFacts, dict[str, ValueOrigin]]:
    for problem in wp.problems:
        if problem.kind == "io":
            problems.append(ConfigProblem(Level.ERROR, str(problem)))
            return {}, WordPressFacts(config_path=wp.path), {}
        if problem.kind in ("duplicate", "syntax"):
            problems.append(ConfigProblem(Level.WARNING, str(problem)))
    reader = _WpReader(wp, explicit, problems)

    api_key = reader.literal("CLOSTE_CLIENT_API_KEY", "closte.api_key")
    if api_key is not None:
        reader.set("closte.api_key", Secret(php_string(api_key.value)), reader.origin(api_key.name))

    prefix = reader.literal(TABLE_PREFIX, "database.base_prefix")
    if prefix is not None:
        text = php_string(prefix.value)
        if re.fullmatch(r"[A-Za-z0-9_]+", text):
            reader.set("database.base_prefix", text, reader.origin(TABLE_PREFIX))
        else:
            problems.append(
                ConfigProblem(
                    Level.ERROR,
                    f"{wp.path}:{prefix.line}: $table_prefix {text!r} may hold only letters, "
                    "digits and underscores (WordPress refuses it too)",
                )
            )

    site = reader.literal("DOMAIN_CURRENT_SITE", "checks.network_hosts")
    domain_current_site = php_string(site.value) if site is not None else None
    if domain_current_site:
        try:
            host = normalize_domain(domain_current_site)
        except DomainError as exc:
            problems.append(
                ConfigProblem(Level.WARNING, f"{wp.path}:{site.line if site else 0}: {exc}")
            )
        else:
            reader.set("checks.network_hosts", (host,), reader.origin("DOMAIN_CURRENT_SITE"))

    connection = _wp_sqlite(reader, root)
    if connection is None:
        connection = _wp_mysql(reader, candidates)
    if connection is not None:
        reader.set("database.url", connection[0], connection[1])

    multisite = reader.literal("MULTISITE", None)
    subdomain = reader.literal("SUBDOMAIN_INSTALL", None)
    facts = WordPressFacts(
        config_path=wp.path,
        multisite=php_truthy(multisite.value) if multisite else None,
        subdomain_install=php_truthy(subdomain.value) if subdomain else None,
        domain_current_site=domain_current_site or None,
        table_prefix=php_string(prefix.value) if prefix else None,
    )
    if not facts.multisite and not isinstance(wp.get("MULTISITE"), Unreadable):
        problems.append(
            ConfigProblem(
                Level.WARNING,
                f"{wp.path}: MULTISITE is not defined as true: this is not a multisite network",
            )
        )
    fact_origins = {"wordpress.config_path": ValueOrigin("discovered", wp.path)}
    for fact, constant in _FACT_CONSTANTS.items():
        if wp.get(constant) is not None:
            fact_origins[fact] = reader.origin(constant)
    return reader.layer, facts, fact_origins


def _wp_sqlite(reader: _WpReader, root: Path) -> tuple[DatabaseConnection, ValueOrigin] | None:
    """The SQLite file of WordPress's SQLite Database Integration, when it is in use."""
    wp = reader.wp
    content_setting = wp.value("WP_CONTENT_DIR")
    content_dir = root / "wp-content"
    if isinstance(content_setting, str) and content_setting:
        content_dir = root / content_setting  # an absolute path replaces root
    db_php = content_dir / "db.php"
    engine = wp.value("DB_ENGINE")
    by_engine = isinstance(engine, str) and engine.lower() == "sqlite"
    if not by_engine and not _mentions_sqlite(db_php):
        return None
    folder = reader.literal("DB_DIR", "database.url")
    name = reader.literal("DB_FILE", "database.url")
    if isinstance(wp.get("DB_DIR"), Unreadable) or isinstance(wp.get("DB_FILE"), Unreadable):
        return None
    directory = root / php_string(folder.value) if folder else content_dir / "database"
    path = directory / (php_string(name.value) if name else _SQLITE_FILE)
    if by_engine:
        origin = reader.origin("DB_ENGINE", "DB_DIR", "DB_FILE", detail="SQLite: DB_ENGINE")
    else:
        origin = ValueOrigin("wp-config", db_php, detail="SQLite Database Integration drop-in")
    return DatabaseConnection("sqlite", sqlite_path=path), origin


def _mentions_sqlite(db_php: Path) -> bool:
    try:
        with db_php.open("rb") as handle:
            return b"sqlite" in handle.read(256 * 1024).lower()
    except OSError:
        return False


def _wp_mysql(
    reader: _WpReader, candidates: Sequence[Path]
) -> tuple[DatabaseConnection, ValueOrigin] | None:
    defs = {name: reader.literal(name, "database.url") for name in _MYSQL_CONSTANTS}
    if any(isinstance(reader.wp.get(name), Unreadable) for name in _MYSQL_CONSTANTS):
        return None
    missing = [name for name, found in defs.items() if found is None]
    if missing:
        if "database.url" not in reader.explicit:
            key = KEYS["database.url"]
            reader.problems.append(
                ConfigProblem(
                    Level.ERROR,
                    f"{reader.wp.path}: {', '.join(missing)} not defined; "
                    f"set {reader.hint_for(key)}",
                )
            )
        return None
    value = {name: php_string(found.value) for name, found in defs.items() if found is not None}
    try:
        host = parse_db_host(value["DB_HOST"])
    except ValueError as exc:
        if "database.url" in reader.explicit:
            return None  # an explicit url stands in for it: nothing to report
        found = reader.wp.get("DB_HOST")
        line = f":{found.line}" if isinstance(found, Defined) else ""
        reader.problems.append(
            ConfigProblem(
                Level.ERROR,
                f"{reader.wp.path}{line}: DB_HOST {value['DB_HOST']!r}: {exc}; "
                f"correct it or set {reader.hint_for(KEYS['database.url'])}",
            )
        )
        return None
    connection = mysql_connection(
        name=value["DB_NAME"],
        user=value["DB_USER"],
        password=Secret(value["DB_PASSWORD"], kind="password"),
        host=host.host,
        port=host.port,
        socket=host.socket,
        socket_candidates=candidates,
    )
    return connection, reader.origin(*_MYSQL_CONSTANTS)


def php_string(value: object) -> str:
    """A PHP value as PHP's string conversion writes it."""
    if isinstance(value, str):
        return value
    if value is True:
        return "1"
    if value is None or value is False:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# -- assembling Settings ---------------------------------------------------------------------


def _default(dotted: str) -> Any:
    value: Any = Settings()
    for part in settings_field(dotted).split("."):
        value = getattr(value, part)
    return value


def _build_settings(values: Mapping[str, Any], facts: WordPressFacts) -> Settings:
    sections: dict[str, Any] = {}
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        section = getattr(defaults, field.name)
        if not dataclasses.is_dataclass(section) or field.name == "wordpress":
            continue
        changes = {
            settings_field(key).split(".", 1)[1]: value
            for key, value in values.items()
            if key.startswith(f"{field.name}.")
        }
        sections[field.name] = dataclasses.replace(section, **changes)  # type: ignore[type-var]
    return Settings(wordpress_root=values["wordpress_root"], wordpress=facts, **sections)
