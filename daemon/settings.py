"""The daemon's effective settings, as typed values.

This module only describes the shape; ``closte_sync.daemon.config`` builds a ``Settings``
from defaults, the TOML file, ``CLOSTE_SYNC_*`` environment variables and wp-config.php,
and remembers where each value came from. Names follow DESIGN.md ("Names other tools rely
on"): add freely, rename never.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from closte_sync.shared.secret import Secret

DEFAULT_CONFIG_PATH = Path("/etc/closte-sync/config.toml")
DEFAULT_BASE_URL = "https://app.closte.com/api/client"
MIN_INTERVAL_S = 10
MAX_INTERVAL_S = 300
DEFAULT_INTERVAL_S = 300


@dataclass(frozen=True)
class WordPressFacts:
    """What wp-config.php says about the network (None where it says nothing)."""

    config_path: Path | None = None
    multisite: bool | None = None
    subdomain_install: bool | None = None
    domain_current_site: str | None = None
    table_prefix: str | None = None


@dataclass(frozen=True)
class ClosteSettings:
    api_key: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    concurrency: int = 4
    rate_per_second: float = 2.0
    timeout_s: float = 45.0  # the plugin's own timeout; total per request
    connect_timeout_s: float = 10.0
    retry_budget: int = 5  # retries of a transient failure before giving up
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    resync_s: float = 300.0  # a full pass this often repairs drift made on the dashboard


@dataclass(frozen=True)
class DatabaseConnection:
    """Where the multisite database lives. The password is a Secret."""

    kind: Literal["mysql", "sqlite"]
    name: str = ""  # MySQL database name
    user: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    host: str = "localhost"
    port: int = 3306
    unix_socket: str | None = None
    sqlite_path: Path | None = None

    def describe(self) -> str:
        """A one-line description safe to show anywhere (no password)."""
        if self.kind == "sqlite":
            return f"sqlite:{self.sqlite_path}"
        where = f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"
        return f"mysql://{self.user}@{where}/{self.name}"


@dataclass(frozen=True)
class DatabaseSettings:
    connection: DatabaseConnection | None = None
    base_prefix: str = "wp_"
    network_id: int = 1  # 1: `wu_domain_mappings`; n > 1: `wu_{n}_domain_mappings`
    poll_s: float = 1.0
    write_back: bool = True
    create_site_records: bool = True
    active_only: bool = False


@dataclass(frozen=True)
class DomainsFileSettings:
    path: Path | None = None


@dataclass(frozen=True)
class ChecksSettings:
    interval_s: int = DEFAULT_INTERVAL_S
    dns_tries: int = 5
    ssl_tries: int = 20
    nameservers: tuple[str, ...] = ()  # "1.2.3.4" or "127.0.0.1:5353"; empty: system
    network_ips: tuple[str, ...] = ()
    network_hosts: tuple[str, ...] = ()
    tls_port: int = 443
    ca_bundle: Path | None = None  # None: the system's trust store


@dataclass(frozen=True)
class GuardSettings:
    max_remove_share: float = 0.25  # refuse to remove more than this share of held domains
    min_held: int = 10  # ... once at least this many are held


@dataclass(frozen=True)
class StoreSettings:
    path: Path = Path("/var/lib/closte-sync/state.sqlite3")
    retention_days: int = 30
    max_events: int = 1_000_000
    # Check history rows kept: a resolver outage makes a check per domain per interval that
    # counts no try, so age alone would let 10,000 domains write millions of rows a day.
    max_checks: int = 1_000_000


@dataclass(frozen=True)
class SocketSettings:
    path: Path = Path("/run/closte-sync/control.sock")
    group: str | None = None  # may read
    admin_group: str | None = None  # may change


@dataclass(frozen=True)
class MetricsSettings:
    listen: str | None = None  # "127.0.0.1:9810": serve Prometheus metrics there; None: off


@dataclass(frozen=True)
class ClusterSettings:
    """Several web nodes on one database: exactly one daemon (the holder of a MySQL named
    lock) calls Closte; the others stand by."""

    enabled: bool = False
    lock_name: str = ""  # empty: "closte_sync:<database>:<base_prefix>"
    retry_s: float = 3.0  # how often a standby tries for the lock, and the leader re-checks it


@dataclass(frozen=True)
class Settings:
    wordpress_root: Path | None = None
    wordpress: WordPressFacts = field(default_factory=WordPressFacts)
    closte: ClosteSettings = field(default_factory=ClosteSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    domains_file: DomainsFileSettings = field(default_factory=DomainsFileSettings)
    checks: ChecksSettings = field(default_factory=ChecksSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    socket: SocketSettings = field(default_factory=SocketSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
