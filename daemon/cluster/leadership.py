"""Who acts: the leader (holder of the MySQL named lock) or a standby.

A standby tries ``GET_LOCK`` every ``[cluster] retry_s``. On taking it, it writes the leader
row, creates the shared tables if needed and merges the shared ledger rows into its local
ledger, and only then says it leads (the daemon's first pass comes after). The leader
re-checks the lock on the same cadence when idle, and before every Closte call through the
gate (``before_call``), so a leader whose lock connection is killed stops at its next call.

A network on SQLite (or with no database) is single-node: the daemon leads, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping
from enum import StrEnum

from closte_sync.daemon.cluster.lock import LeaderLock, LockUnavailable
from closte_sync.daemon.cluster.merge import rows_to_take, write_local
from closte_sync.daemon.cluster.shared import LeaderInfo, SharedTables
from closte_sync.daemon.events import EventSink, Level, make_event
from closte_sync.daemon.reconcile import GateClosed
from closte_sync.daemon.settings import ClusterSettings, DatabaseSettings
from closte_sync.daemon.store import LedgerEntry, Store

KIND = "cluster"
SINGLE_NODE = "a SQLite network is single-node: this daemon acts alone"

__all__ = ["LeaderInfo", "Leadership", "Role", "default_lock_name"]


class Role(StrEnum):
    LEADER = "leader"
    STANDBY = "standby"


def default_lock_name(database: DatabaseSettings) -> str:
    """One lock per network: its database and table prefix (at most 64 characters)."""
    name = database.connection.name if database.connection is not None else ""
    return f"closte_sync:{name}:{database.base_prefix}{database.network_id}"[:64]


class Leadership:
    def __init__(
        self,
        cluster: ClusterSettings,
        database: DatabaseSettings,
        store: Store,
        events: EventSink,
        *,
        host: str | None = None,
        on_change: Callable[[Role], None] = lambda role: None,
    ) -> None:
        self._settings = cluster
        self._store = store
        self._events = events
        self._on_change = on_change
        self.me = LeaderInfo(host or socket.gethostname(), os.getpid(), time.time())
        connection = database.connection
        self.single_node = connection is None or connection.kind != "mysql"
        self.role = Role.LEADER if self.single_node else Role.STANDBY
        self.leader: LeaderInfo | None = self.me if self.single_node else None
        self._lock: LeaderLock | None = None
        self._shared: SharedTables | None = None
        if connection is not None and not self.single_node:
            self._lock = LeaderLock(connection, cluster.lock_name or default_lock_name(database))
            writer = f"{self.me.host}:{self.me.pid}"
            self._shared = SharedTables(self._lock, database.base_prefix, writer)
        self._mirrored: dict[str, LedgerEntry] = {}  # what the shared table holds, as we wrote it
        self._last_problem: str | None = None
        self._wake = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def status(self) -> dict[str, object]:
        """For ``live_status()``: this daemon's role and who leads."""
        return {
            "role": self.role.value,
            "leader": self.leader.to_json() if self.leader is not None else None,
            "single_node": self.single_node,
        }

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if self.single_node:
            self._say(Level.WARNING, SINGLE_NODE)
            return
        self._say(Level.INFO, f"standby: trying for the lock {self._lock_name()!r}")
        try:
            while not stop.is_set():
                await self._step()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.retry_s):
                        await _either(stop, self._wake)
        finally:
            if self._lock is not None:
                await self._lock.close()  # frees the lock on the server at once

    async def _step(self) -> None:
        assert self._lock is not None and self._shared is not None
        if self.is_leader:
            if not await self._lock.holds():
                await self.step_down("the lock is no longer ours (its connection was lost)")
            return
        try:
            if await self._lock.acquire():
                await self._take_over()
                return
            self.leader = await self._shared.current_leader()
            self._last_problem = None
        except LockUnavailable as exc:
            self.leader = None
            problem = str(exc)
            if problem != self._last_problem:  # say it once, not every few seconds
                self._say(Level.WARNING, f"standby: cannot try for the lock: {problem}")
            self._last_problem = problem
        except Exception as exc:  # the shared tables: unreadable, no grant
            await self._lock.close()
            self._say(Level.ERROR, f"standby: taking over failed: {exc}")

    async def _take_over(self) -> None:
        assert self._lock is not None and self._shared is not None
        self.me = LeaderInfo(self.me.host, self.me.pid, time.time())
        await self._shared.create()
        assert self._lock.connection_id is not None
        await self._shared.claim(self.me, self._lock.connection_id)
        shared = await self._shared.read()
        local = {e.domain: e for e in await self._store.ledger.entries()}
        taken = rows_to_take(local, shared)
        await write_local(self._store, taken)
        self._mirrored = dict(shared)
        self.role, self.leader = Role.LEADER, self.me
        self._say(
            Level.INFO,
            f"leader now (lock {self._lock_name()!r}); took {len(taken)} ledger row(s)"
            f" of {len(shared)} from the shared table",
        )
        self._on_change(Role.LEADER)

    async def step_down(self, why: str) -> None:
        if not self.is_leader or self.single_node:
            return
        self.role, self.leader = Role.STANDBY, None
        if self._lock is not None:
            await self._lock.close()
        self._say(Level.WARNING, f"standby: stopped acting: {why}")
        self._on_change(Role.STANDBY)
        self._wake.set()  # try for the lock again at once

    # -- the gate the pass awaits (reconcile.CallGate) ------------------------------------

    async def confirm(self) -> bool:
        """Still the leader? (for the check round and stage write-back)"""
        if self.single_node:
            return True
        if not self.is_leader or self._lock is None:
            return False
        if await self._lock.holds():
            return True
        await self.step_down("the lock check failed")
        return False

    async def settled(self, entries: Mapping[str, LedgerEntry]) -> None:
        await self._write([e for n, e in entries.items() if self._mirrored.get(n) != e])

    async def before_call(self, entry: LedgerEntry) -> None:
        if not await self.confirm():
            raise GateClosed("not the leader any more")
        await self._write([entry])

    async def after_call(self, entry: LedgerEntry) -> None:
        await self._write([entry])

    async def _write(self, entries: list[LedgerEntry]) -> None:
        if self.single_node or not entries:
            return
        if not self.is_leader or self._shared is None:
            raise GateClosed("not the leader any more")
        try:
            await self._shared.write(entries)
        except LockUnavailable as exc:
            await self.step_down(str(exc))
            raise GateClosed(f"not the leader any more: {exc}") from None
        self._mirrored.update((e.domain, e) for e in entries)

    # -- small things ---------------------------------------------------------------------

    def _lock_name(self) -> str:
        return self._lock.name if self._lock is not None else ""

    def _say(self, level: Level, message: str) -> None:
        self._events.emit(make_event(level, KIND, message))


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
