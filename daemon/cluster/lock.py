"""The leader's MySQL named lock, on a connection of its own.

``GET_LOCK(name, 0)`` either takes the lock at once or says no; the server releases it when
the connection that holds it dies (a crashed daemon, a killed connection, a lost network),
so no lease or heartbeat protocol of our own is needed. The same connection carries the
leader's writes to the shared tables: when it is gone, so is the right to write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pymysql

from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.daemon.sources.database.mysql import open_connection
from closte_sync.shared.secret import scrub

QUERY_TIMEOUT_S = 5.0


class LockUnavailable(Exception):
    """The lock connection could not be opened or was lost; the message is safe to show."""


class LeaderLock:
    def __init__(self, connection: DatabaseConnection, name: str) -> None:
        self._settings = connection
        self.name = name
        self._conn: Any = None
        self._busy = asyncio.Lock()  # one statement at a time on the connection
        self._check: asyncio.Future[bool] | None = None
        self.connection_id: int | None = None
        self.held = False

    async def _connect(self) -> Any:
        if self._conn is None:
            try:
                self._conn = await open_connection(self._settings)
            except (pymysql.err.Error, OSError, TimeoutError) as exc:
                raise self._unavailable("cannot connect", exc) from None
        return self._conn

    def _unavailable(self, doing: str, exc: BaseException) -> LockUnavailable:
        text = scrub(str(exc) or type(exc).__name__, self._settings.password)
        return LockUnavailable(f"{self._settings.describe()}: {doing}: {text}")

    async def run(
        self, sql: str, params: Sequence[Any] = (), *, many: bool = False
    ) -> list[tuple[Any, ...]]:
        """One statement on the lock connection; a failure closes it (and so frees the lock
        on the server, if the server still thinks we hold it)."""
        async with self._busy:
            conn = await self._connect()
            try:
                async with asyncio.timeout(QUERY_TIMEOUT_S):
                    async with conn.cursor() as cur:
                        if many:
                            await cur.executemany(sql, params)
                        else:
                            await cur.execute(sql, params)
                        return list(await cur.fetchall())
            except (pymysql.err.Error, OSError, TimeoutError) as exc:
                await self._drop()
                # Whatever went wrong, the connection (and any lock on it) is gone now.
                raise self._unavailable(f"{sql.split()[0]} failed", exc) from None

    async def acquire(self) -> bool:
        """Take the lock if it is free now; never waits."""
        rows = await self.run("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (self.name,))
        got, conn_id = rows[0]
        self.connection_id = int(conn_id)
        self.held = got == 1
        return self.held

    async def holds(self) -> bool:
        """Whether this connection still holds the lock (``IS_USED_LOCK`` is our own
        connection id). Callers that arrive while a check is on the wire share its answer,
        so a batch of concurrent calls costs one round trip."""
        if self._check is None or self._check.done():
            self._check = asyncio.ensure_future(self._ask_holds())
        return await asyncio.shield(self._check)

    async def _ask_holds(self) -> bool:
        try:
            rows = await self.run("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,))
        except LockUnavailable:
            self.held = False
            return False
        self.held = rows[0][0] == 1
        return self.held

    async def holder_id(self) -> int | None:
        """The connection id that holds the lock now (None: nobody)."""
        rows = await self.run("SELECT IS_USED_LOCK(%s)", (self.name,))
        return None if rows[0][0] is None else int(rows[0][0])

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.held = False
        self.connection_id = None
        if conn is not None:
            conn.close()  # no goodbye round trip: the connection may be dead already

    async def close(self) -> None:
        async with self._busy:
            await self._drop()
