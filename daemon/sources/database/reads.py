"""The full read both backends share: the same queries and row conversions, written once.

MySQL and SQLite differ here only in how a table name is quoted and how a parameter is
written, so each backend passes its ``Dialect`` and its own query function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from closte_sync.daemon.sources.database.rows import MappingRow, NetworkRead, SiteRow
from closte_sync.daemon.sources.database.tables import SETTINGS_KEY, TableNames

Query = Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class Dialect:
    quote: str  # around a table name: ` for MySQL, " for SQLite
    param: str  # a bound parameter: %s for aiomysql, ? for sqlite3


MYSQL = Dialect(quote="`", param="%s")
SQLITE = Dialect(quote='"', param="?")


@dataclass(frozen=True)
class ReadQueries:
    mappings: str
    sites: str
    network: str
    settings: str

    @classmethod
    def build(cls, tables: TableNames, dialect: Dialect) -> ReadQueries:
        def table(name: str) -> str:
            return f"{dialect.quote}{name}{dialect.quote}"

        p = dialect.param
        return cls(
            mappings="SELECT id, blog_id, domain, active, primary_domain, secure, stage"
            f" FROM {table(tables.mappings)} ORDER BY id",
            # Only live sites of this network with no mapping row of the same domain: the
            # ones that may need a record (build() applies the exact rules on normalised names).
            sites="SELECT b.blog_id, b.site_id, b.domain, b.path, b.archived, b.spam, b.deleted"
            f" FROM {table(tables.blogs)} AS b WHERE b.site_id = {p} AND b.deleted = 0"
            f" AND b.spam = 0 AND b.archived = 0 AND NOT EXISTS (SELECT 1 FROM"
            f" {table(tables.mappings)} AS m WHERE m.domain = b.domain) ORDER BY b.blog_id",
            network=f"SELECT domain FROM {table(tables.site)} WHERE id = {p}",
            settings=f"SELECT meta_value FROM {table(tables.sitemeta)}"
            f" WHERE site_id = {p} AND meta_key = {p} ORDER BY meta_id LIMIT 1",
        )


async def read_mappings(query: Query, queries: ReadQueries) -> list[MappingRow]:
    return [_mapping(row) for row in await query(queries.mappings, ())]


async def read_network(query: Query, queries: ReadQueries, network_id: int) -> NetworkRead:
    mappings = await read_mappings(query, queries)
    sites = await query(queries.sites, (network_id,))
    network = await query(queries.network, (network_id,))
    option = await query(queries.settings, (network_id, SETTINGS_KEY))
    return NetworkRead(
        mappings=mappings,
        sites=[_site(row) for row in sites],
        network_domain=str(network[0][0]) if network else None,
        settings_value=_text(option[0][0]) if option and option[0][0] is not None else None,
    )


def _mapping(r: tuple[Any, ...]) -> MappingRow:
    return MappingRow(
        id=int(r[0]),
        blog_id=int(r[1]),
        domain=_text(r[2]),
        active=_flag(r[3]),
        primary=_flag(r[4]),
        secure=_flag(r[5]),
        stage=_text(r[6]) if r[6] is not None else None,
    )


def _site(r: tuple[Any, ...]) -> SiteRow:
    return SiteRow(
        blog_id=int(r[0]),
        site_id=int(r[1]),
        domain=_text(r[2]),
        path=_text(r[3]),
        archived=_flag(r[4]),
        spam=_flag(r[5]),
        deleted=_flag(r[6]),
    )


def _flag(value: object) -> bool:
    # Tinyints arrive as integers; the SQLite integration sometimes stores text '1'/'0'.
    if isinstance(value, str):
        return value.strip() not in ("", "0")
    if isinstance(value, bytes | bytearray):
        return bytes(value).strip() not in (b"", b"0")
    return bool(value)


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)
