"""The MySQL/MariaDB backend, on aiomysql.

aiomysql is asyncio-native and pure Python (it drives PyMySQL's protocol code over asyncio
streams), speaks TCP and Unix sockets, and is what the project already depends on; asyncmy
is faster per row but needs a C build, and our reads are small and infrequent.

The connection runs in autocommit mode so every poll sees the latest committed data (a
long-lived REPEATABLE READ transaction would freeze the view at its first read).

Change detection has two tiers, because a checksum over 10,000 rows costs several ms:

1. Every poll asks information_schema for the tables' ``UPDATE_TIME`` (kept in memory by
   InnoDB; a lookup, not a scan).
2. The checksum (a weighted sum of per-row CRC32s over the columns that matter, so a direct
   UPDATE that leaves date_modified alone still counts) runs when an UPDATE_TIME moved, when one
   is recent (it has a one-second resolution and, on MariaDB, marks the statement rather
   than the commit, so changes stay "suspect" for ``fresh_s``), and unconditionally every
   ``full_every`` polls as a safety net for anything tier 1 could miss (a transaction held
   open longer than ``fresh_s``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiomysql
import pymysql

from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.daemon.sources.database.backend import DatabaseUnavailable
from closte_sync.daemon.sources.database.reads import MYSQL, ReadQueries, read_network
from closte_sync.daemon.sources.database.rows import NetworkRead
from closte_sync.daemon.sources.database.tables import SETTINGS_KEY, TableNames
from closte_sync.daemon.sources.database.writes import (
    Statement,
    site_record_insert,
    stage_update,
)
from closte_sync.shared.secret import scrub

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5.0
QUERY_TIMEOUT_S = 10.0
# Two writers raced and the server rolled one back: deadlock (1213), lock wait timeout
# (1205), or InnoDB's auto-increment lock giving up inside INSERT ... SELECT (1467).
# The loser retries the statement.
_RETRYABLE_WRITE_ERRORS = {1205, 1213, 1467}
_WRITE_ATTEMPTS = 5
FRESH_S = 3
FULL_EVERY = 15
_UNKNOWN_VARIABLE = 1193


async def open_connection(s: DatabaseConnection) -> Any:
    """One autocommit connection with our charset and time-outs; pymysql's errors, OSError
    or TimeoutError when it cannot be made."""
    return await asyncio.wait_for(
        aiomysql.connect(
            host=s.host,
            port=s.port,
            unix_socket=s.unix_socket,
            user=s.user,
            password=s.password.reveal(),
            db=s.name,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
        ),
        CONNECT_TIMEOUT_S + 1,
    )


class MySQLBackend:
    def __init__(
        self,
        connection: DatabaseConnection,
        tables: TableNames,
        network_id: int,
        *,
        fresh_s: int = FRESH_S,
        full_every: int = FULL_EVERY,
    ) -> None:
        self._settings = connection
        self._tables = tables
        self._queries = ReadQueries.build(tables, MYSQL)
        self._network_id = network_id
        self._fresh_s = fresh_s
        self._full_every = full_every
        self._conn: Any = None
        self._table_times: tuple[Any, ...] | None = None
        self._checksum: tuple[Any, ...] | None = None
        self._quiet_polls = 0
        self.checksums_run = 0  # how often tier 2 ran (for tests and the benchmark)
        self.description = connection.describe()
        self.change_notifications = False

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            self._conn = await open_connection(self._settings)
        except (pymysql.err.Error, OSError, TimeoutError) as exc:
            raise self._unavailable("cannot connect", exc) from None
        # MySQL 8 caches information_schema statistics for a day by default; MariaDB has no
        # such cache (and no such variable).
        try:
            async with self._conn.cursor() as cur:
                await cur.execute("SET SESSION information_schema_stats_expiry = 0")
        except pymysql.err.OperationalError as exc:
            if not exc.args or exc.args[0] != _UNKNOWN_VARIABLE:
                await self.close()
                raise self._unavailable("cannot connect", exc) from None
        except (pymysql.err.Error, OSError) as exc:
            await self.close()
            raise self._unavailable("cannot connect", exc) from None

    async def close(self) -> None:
        self._table_times = self._checksum = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # closes the socket at once; no round trip to a server that may be gone

    # -- queries --------------------------------------------------------------------------

    async def fingerprint(self) -> tuple[Any, ...]:
        # Tier 1 first: a change landing between the two queries moves UPDATE_TIME, so the
        # next poll runs the checksum again.
        times = await self._query(
            "SELECT TABLE_NAME, UPDATE_TIME, UPDATE_TIME >= NOW() - INTERVAL %s SECOND"
            " FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME IN (%s, %s, %s) ORDER BY TABLE_NAME",
            (self._fresh_s, self._tables.mappings, self._tables.blogs, self._tables.sitemeta),
        )
        table_times = tuple((r[0], r[1]) for r in times)
        recent = any(r[2] for r in times)
        quiet = table_times == self._table_times and not recent
        if quiet and self._checksum is not None and self._quiet_polls < self._full_every:
            self._quiet_polls += 1
            return self._checksum
        self._checksum = await self._full_checksum()
        self._table_times = table_times
        self._quiet_polls = 1
        self.checksums_run += 1
        return self._checksum

    async def _full_checksum(self) -> tuple[Any, ...]:
        t = self._tables
        # One round trip over the three tables. Each row's CRC32 is weighted by an odd
        # number drawn from its id before summing: a plain XOR (or sum) of CRC32s is linear
        # in the row bytes, so two rows trading a flag (a new primary domain) would cancel
        # out; with distinct weights any change to one row always moves the sum.
        mapping_row = "CONCAT_WS('|', id, blog_id, domain, active, primary_domain, secure, stage)"
        site_row = "CONCAT_WS('|', blog_id, site_id, domain, archived, spam, deleted)"
        sql = (
            "SELECT m.n, m.top, m.h, b.n, b.h, o.c FROM "
            "(SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS top,"
            f" COALESCE(SUM(CRC32({mapping_row}) * (2 * (id MOD 2147483647) + 1)), 0) AS h"
            f" FROM `{t.mappings}`) AS m, "
            "(SELECT COUNT(*) AS n,"
            f" COALESCE(SUM(CRC32({site_row}) * (2 * (blog_id MOD 2147483647) + 1)), 0) AS h"
            f" FROM `{t.blogs}`) AS b, "
            "(SELECT COALESCE(MAX(CRC32(meta_value)), -1) AS c"
            f" FROM `{t.sitemeta}` WHERE site_id = %s AND meta_key = %s) AS o"
        )
        rows = await self._query(sql, (self._network_id, SETTINGS_KEY))
        return tuple(rows[0])

    async def read_all(self, sites_after: int | None) -> NetworkRead:
        return await read_network(self._query, self._queries, self._network_id, sites_after)

    async def insert_site_record(self, blog_id: int, domain: str) -> int | None:
        sql, args = site_record_insert(self._tables, MYSQL, blog_id, domain)

        async def insert(cur: Any) -> int | None:
            # Under REPEATABLE READ (whatever the server's default) InnoDB takes shared
            # next-key locks on the blog_id index range the NOT EXISTS looks at, so two
            # writers racing for the same site deadlock instead of both inserting; the loser
            # retries and then finds the row. The setting covers only the next statement.
            await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await cur.execute(sql, args)
            return int(cur.lastrowid) if cur.rowcount == 1 else None

        return await self._write(insert)

    async def check_write_access(self, *, insert: bool, update: bool) -> None:
        # Statements that match no row still need their privilege: a user without INSERT
        # or UPDATE on the table is refused here, and nothing is changed either way.
        table = self._tables.mappings

        async def probe(cur: Any) -> None:
            if update:
                await cur.execute(
                    f"UPDATE `{table}` SET stage = stage, secure = secure,"
                    " date_modified = date_modified WHERE 1 = 0"
                )
            if insert:
                await cur.execute(
                    f"INSERT INTO `{table}` (blog_id, domain) SELECT 0, '' FROM DUAL WHERE 1 = 0"
                )

        await self._write(probe)

    def stage_update(
        self, stage: str, secure: bool, *, spellings: Sequence[str], ids: Sequence[int] | None
    ) -> Statement:
        """The statement update_stage runs (public so a test can EXPLAIN it)."""
        return stage_update(self._tables, MYSQL, stage, secure, spellings=spellings, ids=ids)

    async def update_stage(
        self, stage: str, secure: bool, *, spellings: Sequence[str], ids: Sequence[int] | None
    ) -> int:
        sql, args = self.stage_update(stage, secure, spellings=spellings, ids=ids)

        async def update(cur: Any) -> int:
            await cur.execute(sql, args)
            return int(cur.rowcount)

        return await self._write(update)

    async def wait_for_change(self, timeout: float) -> None:
        # MySQL has no cheap change notification for a client: poll the fingerprint.
        await asyncio.sleep(timeout)

    # -- plumbing -------------------------------------------------------------------------

    async def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async def run(cur: Any) -> list[tuple[Any, ...]]:
            await cur.execute(sql, args)
            return list(await cur.fetchall())

        return await self._run("query failed", run)

    async def _write(self, work: Callable[[Any], Awaitable[T]]) -> T:
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return await self._run("write failed", work, raw=True)
            except pymysql.err.OperationalError as exc:
                retryable = bool(exc.args) and exc.args[0] in _RETRYABLE_WRITE_ERRORS
                if retryable and attempt + 1 < _WRITE_ATTEMPTS:
                    continue
                raise self._unavailable("write failed", exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, what: str, work: Callable[[Any], Awaitable[T]], *, raw: bool = False) -> T:
        await self.connect()
        try:
            async with self._conn.cursor() as cur:
                return await asyncio.wait_for(work(cur), QUERY_TIMEOUT_S)
        except pymysql.err.OperationalError as exc:
            if raw and exc.args and exc.args[0] in _RETRYABLE_WRITE_ERRORS:
                raise  # the connection is fine; _write retries
            await self.close()
            raise self._unavailable(what, exc) from None
        except (pymysql.err.Error, OSError, TimeoutError, RuntimeError) as exc:
            # RuntimeError: aiomysql's "connection lost" after the server closed the socket.
            await self.close()
            raise self._unavailable(what, exc) from None

    def _unavailable(self, what: str, exc: BaseException) -> DatabaseUnavailable:
        detail = scrub(str(exc) or type(exc).__name__, self._settings.password)
        return DatabaseUnavailable(self.description, f"{what}: {detail}")
