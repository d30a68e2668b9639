"""Opening the SQLite file safely, and one connection's transactions.

The store keeps three connections to one WAL-mode file: the state connection (ledger, stages,
settings), the event connection (the event writer and retention) and a read connection for
queries. WAL lets the reader run while a writer commits. Each ``Database`` owns one
connection and an ``asyncio.Lock``, so two coroutines never interleave statements inside one
transaction on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import aiosqlite

from closte_sync.daemon.store.errors import NotAStoreError, StoreBusyError, StoreError

# Written into the file header by the first migration ("ClSy"), so a stray SQLite file
# (WordPress's .ht.sqlite, say) configured as the store by mistake is refused, not migrated.
APPLICATION_ID = 0x436C5379

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

Synchronous = Literal["NORMAL", "FULL"]


@dataclass(frozen=True)
class FileFacts:
    """What the header of an existing store file says, read without changing the file."""

    user_version: int
    application_id: int
    has_schema: bool  # tables or indexes exist (or once existed)


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


def wrap_error(path: Path, doing: str, exc: sqlite3.Error) -> StoreError:
    if is_busy(exc):
        return StoreBusyError(f"{path}: {doing}: the file is locked by another writer ({exc})")
    return StoreError(
        f"{path}: {doing}: {exc}", transient=isinstance(exc, sqlite3.OperationalError)
    )


def _uri(path: Path, mode: Literal["ro", "rw"]) -> str:
    return f"file:{quote(str(path.resolve()))}?mode={mode}"


def prepare_path(path: Path) -> None:
    """Create the folder (0700) and the file (0600) when missing; tighten a looser file.

    Blocking file-system calls: run it in a thread.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
        os.chmod(parent, 0o700)  # mkdir's mode is filtered through the umask
    # O_CREAT with 0600 means the file is never readable by others, not even for a moment.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(candidate, 0o600)


_SQLITE_MAGIC = b"SQLite format 3\x00"
_FACTS_QUERY = (
    "SELECT (SELECT user_version FROM pragma_user_version), "
    "(SELECT application_id FROM pragma_application_id), "
    "(SELECT count(*) FROM sqlite_master)"
)


def _read_header(path: Path) -> FileFacts | None:
    """The facts from the 100-byte file header, or None when a write-ahead log with content
    sits beside the file (then the header on disk may be stale and SQLite must read it)."""
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    with path.open("rb") as file:
        head = file.read(100)
    if not head:
        return FileFacts(user_version=0, application_id=0, has_schema=False)  # made, not used
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise NotAStoreError(f"{path}: not a closte-sync store: not an SQLite file")
    # Offsets from https://www.sqlite.org/fileformat.html#the_database_header
    return FileFacts(
        user_version=int.from_bytes(head[60:64], "big", signed=True),
        application_id=int.from_bytes(head[68:72], "big", signed=True),
        has_schema=int.from_bytes(head[40:44], "big") != 0,  # the schema cookie
    )


async def facts_of(conn: aiosqlite.Connection) -> FileFacts:
    # One statement, so all three facts come from one snapshot even while another
    # process is migrating the file.
    row = await fetch_one(conn, _FACTS_QUERY)
    version, app_id, objects = (int(value) for value in row) if row else (0, 0, 0)
    return FileFacts(user_version=version, application_id=app_id, has_schema=objects > 0)


async def inspect_file(path: Path) -> FileFacts:
    """Read an existing file's schema version without changing anything about it.

    The header is read as plain bytes: even a read-only SQLite connection leaves -wal and
    -shm files behind, and a file we refuse should be left exactly as it was found.
    """
    try:
        facts = await asyncio.to_thread(_read_header, path)
        if facts is not None:
            return facts
        async with aiosqlite.connect(_uri(path, "ro"), uri=True) as conn:
            return await facts_of(conn)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store: {exc.strerror or exc}") from None
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
            raise wrap_error(path, "reading the schema version", exc) from None
        raise NotAStoreError(f"{path}: not a closte-sync store: cannot read it ({exc})") from None


async def _switch_to_wal(conn: aiosqlite.Connection, patience_s: float) -> sqlite3.Row | None:
    """Switch to WAL, retrying while another process holds the file.

    Changing the journal mode needs the file to itself, and SQLite answers SQLITE_BUSY at
    once (without its busy handler) while another process is opening or migrating the
    same new file, so the retries are ours: short, growing, bounded by the busy timeout.
    """
    deadline = time.monotonic() + patience_s
    pause = 0.005
    while True:
        try:
            async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
                row: sqlite3.Row | None = await cursor.fetchone()
                return row
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)


async def connect(
    path: Path,
    *,
    busy_timeout_ms: int,
    synchronous: Synchronous,
    write_lock: asyncio.Lock | None = None,
) -> Database:
    """A read-write connection to an existing file, WAL mode, foreign keys on.

    Connections of one process to one file should share ``write_lock`` (see ``Database``)."""
    try:
        conn = await aiosqlite.connect(_uri(path, "rw"), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise wrap_error(path, "opening", exc) from None
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA synchronous = {synchronous}")
        row = await _switch_to_wal(conn, busy_timeout_ms / 1000)
        if row is None or str(row[0]).lower() != "wal":
            raise StoreError(
                f"{path}: cannot switch to WAL journal mode (got {row[0] if row else None!r}); "
                "put the store on a local file system"
            )
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, sqlite3.Error):
            raise wrap_error(path, "setting up the connection", exc) from None
        raise
    return Database(conn, path, write_lock)


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> aiosqlite.Row | None:
    async with conn.execute(sql, params) as cursor:
        return await cursor.fetchone()


class Database:
    """One connection, with transactions that never interleave on it.

    SQLite lets one writer at a time have the file. A connection that finds it taken
    waits in SQLite's busy handler, which sleeps and tries again (up to 100 ms a try), so a
    connection that writes in many short transactions (the event writer) can keep another
    (the ledger's intents, a check round's results) waiting for seconds, taking the lock
    back each time it comes free. The connections of one process therefore share
    ``write_lock``: writers take turns in the order they came, and SQLite's busy handler
    is left to settle turns with other processes."""

    def __init__(
        self, conn: aiosqlite.Connection, path: Path, write_lock: asyncio.Lock | None = None
    ) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._write_lock = write_lock if write_lock is not None else asyncio.Lock()

    @asynccontextmanager
    async def transaction(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error.

        IMMEDIATE takes the write lock up front, so a transaction that reads then writes
        cannot fail half-way on a lock upgrade. sqlite3 errors come out as StoreError.
        """
        async with self._lock, self._write_lock:
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise wrap_error(self.path, doing, exc) from None
            try:
                yield self.conn
                await self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    # The first error is the one worth reporting.
                    with contextlib.suppress(sqlite3.Error):
                        await self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise wrap_error(self.path, doing, exc) from None
                raise

    @asynccontextmanager
    async def reading(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection for reads (no transaction of ours is open)."""
        async with self._lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise wrap_error(self.path, doing, exc) from None

    async def fetch_all(
        self, doing: str, sql: str, params: Sequence[Any] = ()
    ) -> list[aiosqlite.Row]:
        async with self.reading(doing) as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def fetch_one(
        self, doing: str, sql: str, params: Sequence[Any] = ()
    ) -> aiosqlite.Row | None:
        async with self.reading(doing) as conn:
            return await fetch_one(conn, sql, params)

    async def close(self) -> None:
        async with self._lock:
            await self.conn.close()
