"""The SQLite backend (WordPress's SQLite Database Integration), on aiosqlite.

Change detection without polling the tables: ``watchfiles`` watches the database file and
its ``-wal``/``-journal`` companions, and ``PRAGMA data_version`` on our one long-lived
connection tells whether another connection really committed (it ignores our own writes,
and it is a lookup, not a scan). A slow safety poll (the source's ``safety_poll_s``) covers
file systems without notifications. The file is opened read-write but never created: a
missing file is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiosqlite
import watchfiles

from closte_sync.daemon.sources.database.backend import DatabaseUnavailable
from closte_sync.daemon.sources.database.reads import SQLITE, ReadQueries, read_network
from closte_sync.daemon.sources.database.rows import NetworkRead
from closte_sync.daemon.sources.database.tables import TableNames
from closte_sync.daemon.sources.database.writes import (
    Statement,
    site_record_insert,
    stage_update,
)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
QUERY_TIMEOUT_S = 10.0


class SQLiteBackend:
    def __init__(
        self,
        path: Path,
        tables: TableNames,
        network_id: int,
        *,
        writable: bool,
    ) -> None:
        self._path = path
        self._tables = tables
        self._queries = ReadQueries.build(tables, SQLITE)
        self._network_id = network_id
        self._writable = writable
        self._conn: aiosqlite.Connection | None = None
        self._inode: int | None = None
        self._changed = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._stop_watching = asyncio.Event()
        self.description = f"sqlite:{path}"
        self.change_notifications = True

    # -- connection ---------------------------------------------------------------------

    async def connect(self) -> None:
        if self._conn is not None:
            return
        mode = "rw" if self._writable else "ro"
        uri = f"file:{quote(str(self._path))}?mode={mode}"
        try:
            self._inode = os.stat(self._path).st_ino
            conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable("cannot open", exc) from None
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as exc:
            await conn.close()
            raise self._unavailable("cannot open", exc) from None
        self._conn = conn
        await self._start_watcher()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await conn.close()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            self._stop_watching.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._stop_watching = asyncio.Event()

    # -- queries --------------------------------------------------------------------------

    async def fingerprint(self) -> tuple[int | None, int]:
        try:
            inode = os.stat(self._path).st_ino
        except OSError as exc:
            await self.close()
            raise self._unavailable("cannot stat", exc) from None
        if inode != self._inode:
            # The file was replaced (a restore, a copy): the open connection still reads the
            # old one, so open the new file.
            await self.close()
        rows = await self._query("PRAGMA data_version")
        return (self._inode, int(rows[0][0]))

    async def read_all(self, sites_after: int | None) -> NetworkRead:
        return await read_network(self._query, self._queries, self._network_id, sites_after)

    async def insert_site_record(self, blog_id: int, domain: str) -> int | None:
        sql, args = site_record_insert(self._tables, SQLITE, blog_id, domain)

        async def insert(conn: aiosqlite.Connection) -> int | None:
            cursor = await conn.execute(sql, args)
            return cursor.lastrowid if cursor.rowcount == 1 else None

        return await self._transaction(insert)

    async def check_write_access(self, *, insert: bool, update: bool) -> None:
        # SQLite writes the file and a -wal or -journal file beside it.
        for needed in (self._path, self._path.parent):
            if not await asyncio.to_thread(os.access, needed, os.W_OK):
                raise DatabaseUnavailable(self.description, f"{needed} is not writable")

    def stage_update(
        self, stage: str, secure: bool, *, spellings: Sequence[str], ids: Sequence[int] | None
    ) -> Statement:
        """The statement update_stage runs (public so a test can look at its query plan)."""
        return stage_update(self._tables, SQLITE, stage, secure, spellings=spellings, ids=ids)

    async def update_stage(
        self, stage: str, secure: bool, *, spellings: Sequence[str], ids: Sequence[int] | None
    ) -> int:
        sql, args = self.stage_update(stage, secure, spellings=spellings, ids=ids)

        async def update(conn: aiosqlite.Connection) -> int:
            cursor = await conn.execute(sql, args)
            return cursor.rowcount

        return await self._transaction(update)

    async def wait_for_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    # -- plumbing -------------------------------------------------------------------------

    async def _start_watcher(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_files(), name="sqlite-file-watch")
            # Let the task run to its first await: by then watchfiles has registered its
            # watches, so a commit made right after connect() is not missed.
            await asyncio.sleep(0)

    async def _watch_files(self) -> None:
        names = {self._path.name + suffix for suffix in ("", "-wal", "-journal")}

        def ours(_change: watchfiles.Change, path: str) -> bool:
            return os.path.basename(path) in names

        try:
            async for _changes in watchfiles.awatch(
                self._path.parent,
                watch_filter=ours,
                recursive=False,
                debounce=200,
                step=10,
                stop_event=self._stop_watching,
            ):
                self._changed.set()
        except (OSError, RuntimeError):
            # No notifications here (unusual file system): the safety poll still runs.
            return

    async def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        async def run(conn: aiosqlite.Connection) -> list[tuple[Any, ...]]:
            cursor = await conn.execute(sql, args)
            return [tuple(r) for r in await cursor.fetchall()]

        return await self._run("query failed", run)

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async def run(conn: aiosqlite.Connection) -> T:
            # IMMEDIATE takes the write lock before the NOT EXISTS read, so two writers
            # cannot both see "absent" and both insert.
            await conn.execute("BEGIN IMMEDIATE")
            try:
                result = await work(conn)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return result

        return await self._run("write failed", run)

    async def _run(self, what: str, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        await self.connect()
        assert self._conn is not None
        try:
            return await asyncio.wait_for(work(self._conn), QUERY_TIMEOUT_S)
        except (sqlite3.Error, ValueError, TimeoutError) as exc:
            await self.close()
            raise self._unavailable(what, exc) from None

    def _unavailable(self, what: str, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(self.description, f"{what}: {exc or type(exc).__name__}")
