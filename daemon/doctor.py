"""`closte-sync doctor`: every check a new installation needs, each with its fix.

Checks run in order and share what earlier ones found (the loaded configuration). A check
that cannot run because an earlier one failed says so instead of failing twice. Nothing
here prints a secret: the API key appears only masked.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from closte_sync.daemon.config import ConfigError, LoadedConfig, load_config
from closte_sync.daemon.settings import DEFAULT_CONFIG_PATH, Settings


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # could not run: an earlier check failed


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class DoctorContext:
    config_path: Path | None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    default_config_path: Path = DEFAULT_CONFIG_PATH
    loaded: LoadedConfig | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings | None:
        return self.loaded.settings if self.loaded else None


# A check that does not apply to this installation answers None and is not listed.
Check = Callable[[DoctorContext], Awaitable[CheckResult | None]]


async def check_configuration(ctx: DoctorContext) -> CheckResult:
    try:
        ctx.loaded = load_config(
            ctx.config_path,
            env=ctx.env,
            cwd=ctx.cwd,
            default_config_path=ctx.default_config_path,
        )
    except ConfigError as exc:
        return CheckResult(
            "configuration", Status.FAIL, str(exc), "correct the value the message names"
        )
    ctx.notes.extend(str(problem) for problem in ctx.loaded.problems)
    source = str(ctx.loaded.config_file) if ctx.loaded.config_file else "no config file"
    return CheckResult("configuration", Status.PASS, f"loaded ({source})")


async def check_wp_config(ctx: DoctorContext) -> CheckResult:
    name = "wp-config.php"
    if ctx.loaded is None:
        return CheckResult(name, Status.SKIP, "needs the configuration")
    path = ctx.loaded.wp_config
    if path is None:
        return CheckResult(
            name,
            Status.FAIL,
            "not found (looked in wordpress_root, and upwards from the working directory)",
            "run from inside the WordPress folder, or set wordpress_root in the config file"
            " or CLOSTE_SYNC_WORDPRESS_ROOT",
        )
    if not os.access(path, os.R_OK):
        return CheckResult(
            name,
            Status.FAIL,
            f"{path} is not readable by this user",
            "run as the site's user, or give this user read access to wp-config.php",
        )
    facts = ctx.loaded.settings.wordpress
    if facts.multisite is False:
        return CheckResult(
            name,
            Status.FAIL,
            f"{path}: MULTISITE is not true",
            "closte-sync serves WordPress multisite networks: enable multisite first",
        )
    return CheckResult(name, Status.PASS, str(path))


async def check_api_key(ctx: DoctorContext) -> CheckResult:
    name = "Closte API key"
    settings = ctx.settings
    if settings is None:
        return CheckResult(name, Status.SKIP, "needs the configuration")
    key = settings.closte.api_key
    if not key:
        return CheckResult(
            name,
            Status.FAIL,
            "not set",
            "on Closte it is in wp-config.php as CLOSTE_CLIENT_API_KEY (Closte dashboard:"
            " Sites > Settings > WP-Config); elsewhere set [closte] api_key or"
            " CLOSTE_SYNC_CLOSTE_API_KEY",
        )
    origin = ctx.loaded.origins.get("closte.api_key") if ctx.loaded else None
    return CheckResult(name, Status.PASS, f"{key.masked} from {origin}")


async def check_socket_dir(ctx: DoctorContext) -> CheckResult:
    name = "control socket folder"
    settings = ctx.settings
    if settings is None:
        return CheckResult(name, Status.SKIP, "needs the configuration")
    folder = settings.socket.path.parent
    existing = _nearest_existing(folder)
    if folder.exists() and not folder.is_dir():
        return CheckResult(name, Status.FAIL, f"{folder} is not a folder", "set [socket] path")
    if not os.access(existing, os.W_OK | os.X_OK):
        return CheckResult(
            name,
            Status.FAIL,
            f"{existing} is not writable by this user",
            "under systemd, RuntimeDirectory=closte-sync creates /run/closte-sync; otherwise"
            " set [socket] path to a folder this user owns",
        )
    if len(os.fsencode(settings.socket.path)) > 107:
        return CheckResult(
            name,
            Status.FAIL,
            f"{settings.socket.path} is longer than a Unix socket path may be (107 bytes)",
            "set [socket] path to a shorter path",
        )
    state = "exists" if folder.exists() else f"will be created in {existing}"
    return CheckResult(name, Status.PASS, f"{folder} ({state})")


async def check_store(ctx: DoctorContext) -> CheckResult:
    """Writable and of a schema this version can use; looked at, never created or migrated
    (a doctor run must not change the store under a running daemon)."""
    name = "state store"
    settings = ctx.settings
    if settings is None:
        return CheckResult(name, Status.SKIP, "needs the configuration")
    from closte_sync.daemon.store import SCHEMA_VERSION, SchemaTooNewError, StoreError
    from closte_sync.daemon.store.database import inspect_file
    from closte_sync.daemon.store.migrations import check_compatible

    path = settings.store.path
    fix = f"create {path.parent} owned by the daemon's user, or set [store] path"
    if not path.exists():
        folder = _nearest_existing(path.parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            return CheckResult(name, Status.FAIL, f"{folder} is not writable by this user", fix)
        return CheckResult(name, Status.PASS, f"{path} (will be created on first run)")
    try:
        facts = await inspect_file(path)
        check_compatible(path, facts)
    except SchemaTooNewError as exc:
        return CheckResult(
            name, Status.FAIL, str(exc), "upgrade closte-sync: a newer version wrote this store"
        )
    except StoreError as exc:
        return CheckResult(name, Status.FAIL, str(exc), "check [store] path")
    # SQLite writes its -wal and -shm files beside the store, so the folder must be writable.
    for needed in (path, path.parent):
        if not os.access(needed, os.W_OK):
            return CheckResult(name, Status.FAIL, f"{needed} is not writable by this user", fix)
    version = facts.user_version
    state = "current" if version == SCHEMA_VERSION else f"upgrades to {SCHEMA_VERSION} on start"
    return CheckResult(name, Status.PASS, f"{path} (schema {version}, {state})")


def _needed_grants(settings: Settings) -> str:
    grants = [
        ("INSERT", settings.database.create_site_records),
        ("UPDATE", settings.database.write_back),
    ]
    return " and ".join(name for name, needed in grants if needed)


def _write_settings(settings: Settings) -> str:
    names = [
        ("create_site_records", settings.database.create_site_records),
        ("write_back", settings.database.write_back),
    ]
    return " and ".join(name for name, on in names if on)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


async def check_closte(ctx: DoctorContext) -> CheckResult:
    """The plugin's own connection test: an add with no domain, answered with
    'Invalid or empty domain: ', proves the key is accepted and changes nothing."""
    name = "Closte connection"
    settings = ctx.settings
    if settings is None or not settings.closte.api_key:
        return CheckResult(name, Status.SKIP, "needs the configuration and the API key")
    from closte_sync.daemon.closte.client import ClosteClient

    async with ClosteClient(settings.closte) as closte:
        result = await closte.test_connection()
    where = settings.closte.base_url
    if result.ok:
        return CheckResult(name, Status.PASS, f"{where}: the API key is accepted")
    hint = result.hint
    return CheckResult(
        name,
        Status.FAIL,
        f"{where}: {result.kind} ({result.message or 'no message'})",
        hint.action if hint is not None else "see the message",
    )


async def check_database(ctx: DoctorContext) -> CheckResult:
    """Reachable, with Ultimate Multisite's tables; read only (no site records written)."""
    name = "multisite database"
    settings = ctx.settings
    if settings is None:
        return CheckResult(name, Status.SKIP, "needs the configuration")
    if settings.database.connection is None:
        return CheckResult(
            name,
            Status.FAIL,
            "no connection: wp-config.php gave no DB_* constants and no [database] url is set",
            "set [database] url (mysql://user:pass@host/db or sqlite:////path/.ht.sqlite)",
        )
    from closte_sync.daemon.sources.database.source import DatabaseSource

    read_only = replace(settings.database, write_back=False, create_site_records=False)
    source = DatabaseSource(read_only, settings.wordpress)
    writes = settings.database.write_back or settings.database.create_site_records
    try:
        snapshot = await source.read()
        refused = None
        if writes and snapshot.healthy:
            refused = await source.write_access_problem(
                insert=settings.database.create_site_records,
                update=settings.database.write_back,
            )
    finally:
        await source.aclose()
    connection = settings.database.connection
    where = connection.describe()
    if not snapshot.healthy:
        reasons = "; ".join(p.message for p in snapshot.problems) or "unreachable"
        # The password's length (never its text) tells an empty or truncated one apart.
        login = f" (password {connection.password.masked})" if connection.kind == "mysql" else ""
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}{login}: {reasons}",
            "check DB_HOST, DB_USER, DB_PASSWORD in wp-config.php (or [database] url), and"
            " that Ultimate Multisite is network-activated (it creates wu_domain_mappings)",
        )
    table = source.tables.mappings
    if refused is not None:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: readable, but writes to {table} would be refused: {refused}",
            f"grant {_needed_grants(settings)} on {table} to the database user, or turn off"
            f" {_write_settings(settings)} in [database]",
        )
    return CheckResult(
        name,
        Status.PASS,
        f"{where}: {_count(len(snapshot.domains), 'domain')} from {table} and sites",
    )


async def check_cluster(ctx: DoctorContext) -> CheckResult | None:
    """[cluster] on: the lock can be tried, and the shared tables may be kept (the grant:
    CREATE once, then SELECT, INSERT, UPDATE, DELETE). Changes nothing. Not listed when
    [cluster] is off."""
    name = "several web nodes"
    settings = ctx.settings
    if settings is None:
        return CheckResult(name, Status.SKIP, "needs the configuration")
    if not settings.cluster.enabled:
        return None
    from closte_sync.daemon.cluster import default_lock_name
    from closte_sync.daemon.cluster.leadership import SINGLE_NODE
    from closte_sync.daemon.cluster.lock import LeaderLock, LockUnavailable
    from closte_sync.daemon.cluster.shared import GRANT_PRIVILEGES, SharedTables

    connection = settings.database.connection
    if connection is None or connection.kind != "mysql":
        return CheckResult(name, Status.PASS, f"{SINGLE_NODE} ([cluster] enabled has no effect)")
    lock = LeaderLock(
        connection, settings.cluster.lock_name or default_lock_name(settings.database)
    )
    shared = SharedTables(lock, settings.database.base_prefix, "doctor")
    try:
        problem = await shared.access_problem()
        leader = await shared.current_leader() if not await shared.missing() else None
    except LockUnavailable as exc:
        return CheckResult(name, Status.FAIL, str(exc), "check [database] url and the server")
    finally:
        await lock.close()
    where = f"{connection.describe()}, lock {lock.name!r}"
    if problem is not None:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: {problem}",
            f"grant {', '.join(GRANT_PRIVILEGES)} on {shared.ledger} and {shared.leader}"
            f" (CREATE only until the leader has made them) to the database user",
        )
    held = f"led by {leader.host} (pid {leader.pid})" if leader is not None else "no leader yet"
    return CheckResult(name, Status.PASS, f"{where}: shared tables usable; {held}")


DEFAULT_CHECKS: tuple[Check, ...] = (
    check_configuration,
    check_wp_config,
    check_api_key,
    check_closte,
    check_database,
    check_cluster,
    check_socket_dir,
    check_store,
)


async def run_checks(
    ctx: DoctorContext, checks: tuple[Check, ...] = DEFAULT_CHECKS
) -> list[CheckResult]:
    results = [await _run_one(check, ctx) for check in checks]
    return [result for result in results if result is not None]


async def _run_one(check: Check, ctx: DoctorContext) -> CheckResult | None:
    """A check that breaks is a failed check with its reason, never a traceback: the
    doctor is what a user runs when things are already wrong."""
    try:
        return await check(ctx)
    except Exception as exc:  # the point is to catch what the checks did not foresee
        name = check.__name__.removeprefix("check_").replace("_", " ")
        return CheckResult(
            name,
            Status.FAIL,
            f"the check itself failed: {type(exc).__name__}: {exc}",
            "fix what the message names; if it makes no sense, report it with this output",
        )
