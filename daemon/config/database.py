"""Database connections from a `database.url` or from wp-config.php's DB_HOST.

DB_HOST is split the way WordPress's ``wpdb::parse_db_host`` does it: a socket after
``:/``, an IPv6 address in brackets, or ``host:port``. As PHP's mysqli does, ``localhost``
(or an empty host) without a port means the server's default unix socket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.shared.secret import Secret

# Where MySQL and MariaDB put their socket on common systems, in the order mysqli's
# builds look for it.
DEFAULT_SOCKET_CANDIDATES: Final = (
    Path("/run/mysqld/mysqld.sock"),
    Path("/var/run/mysqld/mysqld.sock"),
    Path("/tmp/mysql.sock"),
)
DEFAULT_PORT: Final = 3306
_IPV6_HOST = re.compile(r"^\[?(?P<host>[0-9a-fA-F:]+)(?:\]:(?P<port>\d+))?")
_PLAIN_HOST = re.compile(r"^(?P<host>[^:/]*)(?::(?P<port>\d+))?")


class DatabaseUrlError(ValueError):
    """A `database.url` that cannot be used; the message never contains the password."""


@dataclass(frozen=True)
class DbHost:
    host: str
    port: int | None
    socket: str | None


def parse_db_host(value: str) -> DbHost:
    """Split DB_HOST as ``wpdb::parse_db_host`` does; a port outside 1..65535 is a
    ValueError."""
    socket = None
    host = value.strip()
    socket_at = host.find(":/")
    if socket_at != -1:
        socket = host[socket_at + 1 :]
        host = host[:socket_at]
    pattern = _IPV6_HOST if host.count(":") > 1 else _PLAIN_HOST
    match = pattern.match(host)
    found_host = match.group("host") if match else ""
    port = match.group("port") if match else None
    number = int(port) if port else None
    if number is not None and not 1 <= number <= 65535:
        raise ValueError(f"port {number} is outside 1..65535")
    return DbHost(found_host or "", number, socket)


def default_socket(candidates: Sequence[Path]) -> Path | None:
    return next((path for path in candidates if path.exists()), None)


def mysql_connection(
    *,
    name: str,
    user: str,
    password: Secret,
    host: str,
    port: int | None,
    socket: str | None,
    socket_candidates: Sequence[Path],
) -> DatabaseConnection:
    """A MySQL connection, resolving `localhost` without a port to the default socket."""
    if socket:
        return DatabaseConnection("mysql", name, user, password, "localhost", DEFAULT_PORT, socket)
    if host.lower() in ("", "localhost") and port is None:
        found = default_socket(socket_candidates)
        if found is not None:
            return DatabaseConnection(
                "mysql", name, user, password, "localhost", DEFAULT_PORT, str(found)
            )
        return DatabaseConnection("mysql", name, user, password, "127.0.0.1", DEFAULT_PORT)
    return DatabaseConnection(
        "mysql", name, user, password, host or "localhost", port or DEFAULT_PORT
    )


def parse_database_url(
    url: str, *, base_dir: Path, socket_candidates: Sequence[Path]
) -> DatabaseConnection:
    """`mysql://user:pass@host:port/db`, `mysql:///db?unix_socket=/path`, `sqlite:////path`.

    User, password and database name are percent-decoded; a relative SQLite path is taken
    from ``base_dir``.
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme == "sqlite":
            if parts.netloc:
                raise DatabaseUrlError(
                    "a sqlite URL has no host: use sqlite:////absolute/path/.ht.sqlite"
                )
            raw = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
            if not raw:
                raise DatabaseUrlError("the sqlite URL names no file")
            path = Path(raw)
            if not path.is_absolute():
                path = base_dir / path
            return DatabaseConnection("sqlite", sqlite_path=path)
        if scheme not in ("mysql", "mariadb"):
            shown = scheme or "(none)"
            raise DatabaseUrlError(f"unsupported scheme {shown!r}: use mysql:// or sqlite://")
        name = unquote(parts.path.lstrip("/"))
        if not name or "/" in name:
            raise DatabaseUrlError("the URL names no database: mysql://user:pass@host:port/NAME")
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"unix_socket"})
        if unknown:
            raise DatabaseUrlError(f"unknown URL parameter(s): {', '.join(unknown)}")
        socket = query.get("unix_socket", [None])[-1]
        port = parts.port  # raises ValueError when out of range or not a number
        if port == 0:
            raise DatabaseUrlError("the port is not valid (0)")
        return mysql_connection(
            name=name,
            user=unquote(parts.username or ""),
            password=Secret(unquote(parts.password or ""), kind="password"),
            host=parts.hostname or "",
            port=port,
            socket=socket,
            socket_candidates=socket_candidates,
        )
    except DatabaseUrlError:
        raise
    except ValueError as exc:
        # urllib's messages can quote the URL, password included: give our own.
        kind = "port" if "port" in str(exc).lower() else "URL"
        raise DatabaseUrlError(f"the {kind} is not valid") from None
