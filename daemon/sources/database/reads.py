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
    utc_now: str  # the current UTC time, in the form WordPress stores datetimes
    # Makes a text comparison ignore case: MySQL's tables already compare that way (their
    # _ci collation); SQLite compares bytes unless told.
    nocase: str

    def table(self, name: str) -> str:
        return f"{self.quote}{name}{self.quote}"

    def params(self, count: int) -> str:
        return ", ".join([self.param] * count)


MYSQL = Dialect(quote="`", param="%s", utc_now="UTC_TIMESTAMP()", nocase="")
SQLITE = Dialect(
    quote='"',
    param="?",
    utc_now="strftime('%Y-%m-%d %H:%M:%S', 'now')",
    nocase=" COLLATE NOCASE",
)


@dataclass(frozen=True)
class ReadQueries:
    mappings: str
    sites: str
    network: str
    settings: str
    max_blog_id: str
    mappings_table: str
    blogs_table: str

    @classmethod
    def build(cls, tables: TableNames, dialect: Dialect) -> ReadQueries:
        table = dialect.table
        p = dialect.param
        return cls(
            mappings="SELECT id, blog_id, domain, active, primary_domain, secure, stage"
            f" FROM {table(tables.mappings)} ORDER BY id",
            # Only live sites of this network created after a given blog_id: the ones that may
            # need a record (build() applies the exact rules on normalised names).
            sites="SELECT blog_id, site_id, domain, path, archived, spam, deleted"
            f" FROM {table(tables.blogs)} WHERE site_id = {p} AND blog_id > {p}"
            " AND deleted = 0 AND spam = 0 AND archived = 0 ORDER BY blog_id",
            network=f"SELECT domain FROM {table(tables.site)} WHERE id = {p}",
            max_blog_id=f"SELECT COALESCE(MAX(blog_id), 0) FROM {table(tables.blogs)}"
            f" WHERE site_id = {p}",
            mappings_table=tables.mappings,
            blogs_table=tables.blogs,
            settings=f"SELECT meta_value FROM {table(tables.sitemeta)}"
            f" WHERE site_id = {p} AND meta_key = {p} ORDER BY meta_id LIMIT 1",
        )


async def read_mappings(
    query: Query, queries: ReadQueries, unreadable: list[tuple[str, str]] | None = None
) -> list[MappingRow]:
    """Every mapping row. A column that does not read (text in a number column, as a broken
    import leaves it) is reported and given a neutral value, but the row's domain still
    counts: dropping it would make the daemon remove a live alias over a cosmetic fault."""
    problems = unreadable if unreadable is not None else []
    return [
        _mapping(row, queries.mappings_table, problems) for row in await query(queries.mappings, ())
    ]


async def read_network(
    query: Query, queries: ReadQueries, network_id: int, sites_after: int | None
) -> NetworkRead:
    """One full read; ``sites_after``: the sites newer than this blog_id are looked at
    (None: none are, only the highest blog_id is read)."""
    unreadable: list[tuple[str, str]] = []
    mappings = await read_mappings(query, queries, unreadable)
    top = await query(queries.max_blog_id, (network_id,))
    max_blog_id = _whole(top[0][0]) if top else 0
    after = max_blog_id if sites_after is None else sites_after
    sites = await query(queries.sites, (network_id, after))
    network = await query(queries.network, (network_id,))
    option = await query(queries.settings, (network_id, SETTINGS_KEY))
    return NetworkRead(
        mappings=mappings,
        sites=_convert_sites(sites, queries.blogs_table, unreadable),
        network_domain=str(network[0][0]) if network else None,
        settings_value=_text(option[0][0]) if option and option[0][0] is not None else None,
        max_blog_id=max_blog_id,
        unreadable=unreadable,
    )


def _convert_sites(
    rows: list[tuple[Any, ...]], table: str, unreadable: list[tuple[str, str]]
) -> list[SiteRow]:
    """A site row that does not read is reported and skipped: sites only ever add records,
    so leaving one out can cost a record, never an alias."""
    converted: list[SiteRow] = []
    for row in rows:
        try:
            converted.append(_site(row))
        except (TypeError, ValueError) as exc:
            unreadable.append((f"{table}#{row[0]!r}", f"unreadable row: {exc}"))
    return converted


def _whole(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _mapping(r: tuple[Any, ...], table: str, problems: list[tuple[str, str]]) -> MappingRow:
    place = f"{table}#{r[0]}"

    def number(column: str, value: object) -> int:
        try:
            return int(str(value))
        except ValueError:
            problems.append((place, f"column {column}: {value!r} is not a number"))
            return 0

    return MappingRow(
        id=number("id", r[0]),
        blog_id=number("blog_id", r[1]),
        domain=_text(r[2]) if r[2] is not None else "",
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
