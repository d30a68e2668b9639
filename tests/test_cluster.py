"""Leadership in one process: the named lock on real MariaDB, the shared ledger, the merge
into a local store, the gate, and SQLite's single-node mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from db_fixtures import mysql_database

from closte_sync.daemon.cluster import Leadership, Role, default_lock_name
from closte_sync.daemon.cluster.lock import LeaderLock, LockUnavailable
from closte_sync.daemon.cluster.merge import rows_to_take, write_local
from closte_sync.daemon.events import MemorySink
from closte_sync.daemon.reconcile import GateClosed
from closte_sync.daemon.settings import (
    ClusterSettings,
    DatabaseConnection,
    DatabaseSettings,
    StoreSettings,
)
from closte_sync.daemon.store import DomainState, LedgerEntry, Stage, Store, open_store
from closte_sync.daemon.store.ledger import DomainOrigin
from closte_sync.shared.secret import Secret

FAST = ClusterSettings(enabled=True, retry_s=0.1)


def entry(name: str, state: DomainState, *, ours: bool, attempts: int = 0) -> LedgerEntry:
    return LedgerEntry(
        domain=name,
        wildcard=False,
        state=state,
        origin=DomainOrigin.DATABASE,
        added_by_us=ours,
        place="wp_wu_domain_mappings#1",
        first_seen=100.0,
        last_change=200.0,
        last_error=None,
        attempts=attempts,
    )


@contextlib.asynccontextmanager
async def store_at(path: Path) -> AsyncIterator[Store]:
    store = await open_store(StoreSettings(path=path))
    try:
        yield store
    finally:
        await store.aclose()


@contextlib.asynccontextmanager
async def running(leadership: Leadership) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(leadership.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def said(sink: MemorySink, text: str) -> asyncio.Future[object]:
    return asyncio.ensure_future(sink.wait_for(lambda e: text in e.message, timeout=10))


async def test_only_one_lock_holder_and_the_server_frees_it_when_its_connection_dies() -> None:
    async with mysql_database() as db:
        connection = db.settings().connection
        assert connection is not None
        first, second = LeaderLock(connection, "t:lock"), LeaderLock(connection, "t:lock")
        try:
            assert await first.acquire()
            assert not await second.acquire()
            assert await first.holds() and not await second.holds()
            await db.execute(f"KILL CONNECTION {first.connection_id}")
            assert not await first.holds()  # the check itself finds the connection gone
            assert await second.acquire()
        finally:
            await first.close()
            await second.close()


async def test_a_lock_connection_error_names_the_database_and_never_the_password() -> None:
    connection = DatabaseConnection(
        kind="mysql",
        name="wp",
        user="wp",
        password=Secret("s3cret-pass", kind="password"),
        host="127.0.0.1",
        port=1,  # nothing listens there
    )
    lock = LeaderLock(connection, "t:lock")
    with pytest.raises(LockUnavailable) as caught:
        await lock.acquire()
    assert "mysql://wp@127.0.0.1:1/wp" in str(caught.value)
    assert "s3cret-pass" not in str(caught.value)


def test_shared_rows_replace_stale_local_ones_keeping_first_seen() -> None:
    local = {
        "a.test": entry("a.test", DomainState.WANTED, ours=False),
        "b.test": entry("b.test", DomainState.HELD, ours=True),
    }
    a_shared = replace(
        entry("a.test", DomainState.ADDING, ours=False, attempts=1), first_seen=150.0
    )
    shared = {
        "a.test": a_shared,
        "b.test": local["b.test"],
        "c.test": entry("c.test", DomainState.HELD, ours=True),
    }
    taken = rows_to_take(local, shared)
    assert [e.domain for e in taken] == ["a.test", "c.test"]
    assert taken[0].state is DomainState.ADDING and taken[0].attempts == 1
    assert taken[0].first_seen == 100.0


async def test_writing_shared_rows_locally_keeps_their_stage_rows(tmp_path: Path) -> None:
    async with store_at(tmp_path / "s.sqlite3") as store:
        await store.ledger.want("a.test", "database")
        await store.ledger.mark_adding("a.test")
        await store.ledger.confirm_added("a.test")
        assert await store.stages.begin("a.test", Stage.CHECKING_DNS)
        held = await store.ledger.get("a.test")
        assert held is not None
        await write_local(store, [replace(held, state=DomainState.REMOVING, attempts=1)])
        after = await store.ledger.get("a.test")
        assert after is not None and after.state is DomainState.REMOVING
        assert await store.stages.get("a.test") is not None


async def test_a_new_leader_takes_the_shared_ownership_and_the_gate_closes_on_a_lost_lock(
    tmp_path: Path,
) -> None:
    async with (
        mysql_database() as db,
        store_at(tmp_path / "one.sqlite3") as store_one,
        store_at(tmp_path / "two.sqlite3") as store_two,
    ):
        settings = db.settings()
        sink_one, sink_two = MemorySink(), MemorySink()
        one = Leadership(FAST, settings, store_one, sink_one, host="one")
        two = Leadership(FAST, settings, store_two, sink_two, host="two")
        async with running(one) as stop_one:
            await said(sink_one, "leader now")
            assert one.role is Role.LEADER
            # The leader records an intent and its outcome the way the pass does.
            await store_one.ledger.want("x.test", "database")
            adding = await store_one.ledger.mark_adding("x.test")
            await one.before_call(adding)
            await one.after_call(await store_one.ledger.confirm_added("x.test"))
            await store_one.ledger.want("y.test", "database")
            await one.before_call(await store_one.ledger.mark_adding("y.test"))  # then it dies

            async with running(two):
                await said(sink_two, "standby: trying")
                leader_seen = said(sink_two, "leader now")
                # A standby's gate is shut.
                assert two.role is Role.STANDBY
                with pytest.raises(GateClosed):
                    await two.before_call(adding)
                lock = default_lock_name(settings)
                ((holder,),) = await db.query("SELECT IS_USED_LOCK(?)", lock)
                await db.execute(f"KILL CONNECTION {int(holder)}")
                with pytest.raises(GateClosed):
                    await one.before_call(adding)
                assert one.role is Role.STANDBY
                stop_one.set()  # this node leaves; the other must take over
                await leader_seen
                assert two.status()["role"] == "leader"
                x = await store_two.ledger.get("x.test")
                y = await store_two.ledger.get("y.test")
                assert x is not None and x.added_by_us and x.state is DomainState.HELD
                assert y is not None and y.state is DomainState.ADDING and y.attempts == 1
                leader = two.status()["leader"]
                assert isinstance(leader, dict) and leader["host"] == "two"


async def test_a_sqlite_network_is_single_node_and_says_so(tmp_path: Path) -> None:
    settings = DatabaseSettings(
        connection=DatabaseConnection(kind="sqlite", sqlite_path=tmp_path / ".ht.sqlite")
    )
    sink = MemorySink()
    async with store_at(tmp_path / "s.sqlite3") as store:
        leadership = Leadership(FAST, settings, store, sink, host="solo")
        async with running(leadership):
            await said(sink, "single-node")
        assert leadership.is_leader and await leadership.confirm()
        assert leadership.status()["single_node"] is True
        await leadership.before_call(entry("a.test", DomainState.ADDING, ours=False))
