"""The event writer (never blocks the caller) and the event queries the TUI pages through."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from closte_sync.daemon.events import Event, EventSink, Level, make_event
from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store import EventFilter, Store, StoreOptions, open_store
from closte_sync.shared.secret import Secret, mask

API_KEY = "ck_live_7f3a9b2c4d5e6f708192a3b4c5d6e7f8"
DB_PASSWORD = 'db"pass\\word'  # a quote and a backslash: escaped differently in JSON


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def _count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=tmp_path / "state.sqlite3"))
    yield opened
    await opened.aclose()


async def test_flush_writes_everything_emitted_newest_first(store: Store) -> None:
    sink: EventSink = store.events  # the daemon hands it to every part as their sink
    for n in range(30):
        sink.emit(make_event(Level.INFO, "integration-closte", f"call {n}", n=n))
    await store.events.flush()
    page = await store.event_log.page(limit=100)
    assert [event.message for event in page] == [f"call {n}" for n in reversed(range(30))]
    assert page[0].details == {"n": 29}
    assert page[0].level is Level.INFO
    assert [e.id for e in page] == sorted((e.id for e in page), reverse=True)


async def test_batches_go_out_when_full_or_when_the_interval_passes(tmp_path: Path) -> None:
    by_size = await open_store(
        StoreSettings(path=tmp_path / "size.sqlite3"),
        StoreOptions(batch_size=10, batch_interval_s=60.0),
    )
    try:
        for n in range(25):
            by_size.events.emit(make_event(Level.INFO, "t", f"e{n}"))
        await wait_until(lambda: by_size.events.stats.written == 20)
        assert by_size.events.stats.batches == 2
        assert by_size.events.stats.queued == 5  # waits for a full batch or the interval
        await by_size.events.flush()
        assert await by_size.event_log.count() == 25
    finally:
        await by_size.aclose()

    by_time = await open_store(
        StoreSettings(path=tmp_path / "time.sqlite3"),
        StoreOptions(batch_size=1000, batch_interval_s=0.05),
    )
    try:
        for n in range(3):
            by_time.events.emit(make_event(Level.INFO, "t", f"e{n}"))
        await wait_until(lambda: by_time.events.stats.written == 3)  # no flush asked
        assert by_time.events.stats.batches == 1
    finally:
        await by_time.aclose()


async def test_emit_returns_at_once_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    store = await open_store(
        StoreSettings(path=path), StoreOptions(busy_timeout_ms=20, batch_interval_s=0.01)
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.002)

    beating = asyncio.create_task(heartbeat())
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the write lock is now someone else's
        # emit is a plain function: all 200 calls return while the lock is still held,
        # which is the whole promise (no await, so nothing in it can wait on the file).
        assert not inspect.iscoroutinefunction(store.events.emit)
        for n in range(200):
            store.events.emit(make_event(Level.INFO, "t", f"while locked {n}"))

        # The writer meets the lock, keeps its batch and retries; the loop keeps running.
        await wait_until(lambda: store.events.stats.retries >= 3)
        ticks_while_locked = ticks
        await wait_until(lambda: ticks >= ticks_while_locked + 5)
        assert store.events.stats.written == 0
        assert await store.event_log.count() == 0  # readers are not blocked by the lock

        blocker.execute("COMMIT")
        await asyncio.wait_for(store.events.flush(), 10)
        assert await store.event_log.count() == 200
        assert store.events.stats.lost == 0
    finally:
        beating.cancel()
        blocker.close()
        await store.aclose()


async def test_a_full_queue_drops_the_oldest_debug_and_info_and_reports_the_count(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    store = await open_store(
        StoreSettings(path=path), StoreOptions(busy_timeout_ms=10, queue_limit=10, batch_size=10)
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        # The writer takes its first batch, then stays stuck on the lock with it.
        store.events.emit(make_event(Level.INFO, "t", "first"))
        await wait_until(lambda: store.events.stats.retries >= 1)
        for n in range(3):
            store.events.emit(make_event(Level.ERROR, "t", f"error {n}"))
        for n in range(20):
            store.events.emit(make_event(Level.DEBUG, "t", f"debug {n}"))
        assert store.events.stats.dropped_low == 13
        assert store.events.stats.dropped_high == 0
        blocker.execute("COMMIT")
        await store.events.flush()

        kept = [e.message for e in reversed(await store.event_log.page(limit=100))]
        assert kept[:1] == ["first"]
        assert kept[1:4] == ["error 0", "error 1", "error 2"]
        assert kept[4:11] == [f"debug {n}" for n in range(13, 20)]
        report = kept[11]
        assert report.startswith("13 events were dropped")
        warnings = await store.event_log.page(EventFilter(min_level=Level.WARNING, kind="store"))
        assert len(warnings) == 1 and warnings[0].details["dropped"] == 13
    finally:
        blocker.close()
        await store.aclose()


async def test_room_waits_for_the_writer_so_a_burst_drops_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = await open_store(
        StoreSettings(path=path),
        StoreOptions(busy_timeout_ms=10, queue_limit=10, batch_size=5, batch_interval_s=5),
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        for n in range(8):
            store.events.emit(make_event(Level.INFO, "t", f"queued {n}"))
        blocker.execute("BEGIN IMMEDIATE")
        # 8 queued, 6 more would drop the oldest: while the file is locked no room comes.
        assert await store.events.room(6, timeout=0.2) is False
        blocker.execute("COMMIT")
        # Once the writer can write, room is made without waiting out batch_interval_s.
        assert await asyncio.wait_for(store.events.room(6), 4) is True
        for n in range(6):
            store.events.emit(make_event(Level.INFO, "t", f"burst {n}"))
        await store.events.flush()
        assert store.events.stats.dropped == 0
        assert await store.event_log.count() == 14
        # A burst larger than the queue waits only for an empty queue.
        assert await asyncio.wait_for(store.events.room(50), 4) is True
    finally:
        blocker.close()
        await store.aclose()


async def test_warnings_and_errors_go_only_when_nothing_else_is_left(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = await open_store(
        StoreSettings(path=path), StoreOptions(busy_timeout_ms=10, queue_limit=4)
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        store.events.emit(make_event(Level.INFO, "t", "first"))
        await wait_until(lambda: store.events.stats.retries >= 1)
        for n in range(6):
            store.events.emit(make_event(Level.WARNING, "t", f"warning {n}"))
        assert store.events.stats.dropped_high == 2
    finally:
        blocker.execute("COMMIT")
        blocker.close()
        await store.aclose()


async def test_close_gives_up_on_a_file_locked_for_good_and_counts_the_loss(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    store = await open_store(
        StoreSettings(path=path), StoreOptions(busy_timeout_ms=10, close_timeout_s=0.3)
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        for n in range(7):
            store.events.emit(make_event(Level.INFO, "t", f"doomed {n}"))
        await wait_until(lambda: store.events.stats.retries >= 1)
        await asyncio.wait_for(store.aclose(), 10)  # returns although the lock never goes
        assert store.events.stats.lost == 7
        assert store.events.stats.written == 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _count_rows(path) == 0


async def test_emit_never_raises_even_after_close_or_with_odd_details(tmp_path: Path) -> None:
    store = await open_store(StoreSettings(path=tmp_path / "state.sqlite3"))

    class Opaque:
        def __str__(self) -> str:
            return "opaque thing"

    store.events.emit(make_event(Level.INFO, "t", "odd", when=Opaque(), raw=b"\x00\x01"))
    await store.events.flush()
    (event,) = await store.event_log.page()
    assert event.details == {"when": "opaque thing", "raw": "b'\\x00\\x01'"}
    await store.aclose()
    store.events.emit(make_event(Level.ERROR, "t", "too late"))
    assert store.events.stats.dropped_closed == 1


async def test_queries_filter_and_page_with_bound_parameters(store: Store) -> None:
    t0 = 1_700_000_000.0
    levels = [Level.DEBUG, Level.INFO, Level.WARNING, Level.ERROR]
    for n in range(40):
        store.events.emit(
            Event(
                level=levels[n % 4],
                kind="domain-a.example.com" if n % 2 else "integration-closte",
                message=f"event {n} 100%_done" if n == 7 else f"event {n}",
                domain="a.example.com" if n % 2 else "b.example.com",
                details={"n": n},
                time=t0 + n,
            )
        )
    await store.events.flush()

    # Keyset paging: pages of 15 cover everything once, newest first.
    seen: list[int] = []
    before: int | None = None
    while page := await store.event_log.page(before_id=before, limit=15):
        seen.extend(e.details["n"] for e in page)
        before = page[-1].id
    assert seen == list(reversed(range(40)))

    warn_up = await store.event_log.page(EventFilter(min_level=Level.WARNING), limit=100)
    assert {e.level for e in warn_up} == {Level.WARNING, Level.ERROR} and len(warn_up) == 20
    assert await store.event_log.count(EventFilter(min_level=Level.ERROR)) == 10
    assert await store.event_log.count(EventFilter(domain="a.example.com")) == 20
    assert await store.event_log.count(EventFilter(kind="integration-closte")) == 20
    window = await store.event_log.page(EventFilter(since=t0 + 10, until=t0 + 13))
    assert [e.details["n"] for e in window] == [12, 11, 10]
    both = EventFilter(min_level=Level.ERROR, domain="a.example.com", since=t0 + 20)
    assert [e.details["n"] for e in await store.event_log.page(both)] == [39, 35, 31, 27, 23]

    # Text search is a plain substring: '%' and '_' are not wildcards.
    assert [e.details["n"] for e in await store.event_log.page(EventFilter(text="100%_"))] == [7]
    assert await store.event_log.count(EventFilter(text="event 1")) == 11  # 1, 10..19
    assert await store.event_log.count(EventFilter(text="%")) == 1
    hostile = "x' OR 1=1; DROP TABLE events; --"
    assert await store.event_log.page(EventFilter(text=hostile, domain=hostile)) == []
    assert await store.event_log.count() == 40

    latest = await store.event_log.latest_for_domain("b.example.com", limit=3)
    assert [e.details["n"] for e in latest] == [38, 36, 34]
    newer = await store.event_log.after(latest[1].id, limit=10)
    assert [e.details["n"] for e in newer] == [37, 38, 39]
    assert latest[0].to_event().time == t0 + 38


async def test_a_secret_that_slipped_into_an_event_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = await open_store(StoreSettings(path=path))
    key = Secret(API_KEY)
    store.register_secret(key)
    store.register_secret(Secret(DB_PASSWORD))
    store.events.emit(
        make_event(
            Level.ERROR,
            "integration-closte",
            f"GET https://app.closte.com/api/client/getdomains?apikey={API_KEY} failed",
            domain="a.example.com",
            url=f"...?apikey={API_KEY}",
            nested={"list": [API_KEY, {"deep": f"x{API_KEY}y"}]},
            secret_object=key,
            dsn=f"mysql://wp:{DB_PASSWORD}@localhost/wp",
        )
    )
    await store.ledger.want("a.example.com", "database")
    await store.ledger.record_failure("a.example.com", f"HTTP 500 for apikey={API_KEY}")
    await store.events.flush()
    (event,) = await store.event_log.page()
    assert mask(API_KEY) in event.message
    assert event.details["secret_object"] == mask(API_KEY)
    assert event.details["dsn"] == f"mysql://wp:{mask(DB_PASSWORD)}@localhost/wp"
    entry = await store.ledger.get("a.example.com")
    assert entry is not None and entry.last_error == f"HTTP 500 for apikey={mask(API_KEY)}"
    await store.aclose()

    stored = b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )
    assert API_KEY.encode() not in stored
    assert b"pass" not in stored  # neither raw nor JSON-escaped (pass\\word)
    assert mask(API_KEY).encode() in stored  # the hint is there: the scrub really ran


async def test_a_url_encoded_secret_is_masked_too(tmp_path: Path) -> None:
    key = "k3y+with/slash=and&MORESECRET"
    path = tmp_path / "state.sqlite3"
    store = await open_store(StoreSettings(path=path))
    store.register_secret(Secret(key))
    store.events.emit(
        make_event(
            Level.ERROR,
            "integration-closte",
            "400, message='Bad status line', url='http://x/getdomains?apikey="
            "k3y%2Bwith/slash%3Dand%26MORESECRET'",
            url="http://x/getdomains?apikey=k3y%2Bwith%2Fslash%3Dand%26MORESECRET",
        )
    )
    await store.events.flush()
    await store.aclose()
    stored = b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )
    assert b"MORESECRET" not in stored
    assert mask(key).encode() in stored


async def test_prune_by_age_and_by_count_in_chunks(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    day = 86_400.0
    settings = StoreSettings(path=tmp_path / "state.sqlite3", retention_days=7, max_events=50)
    store = await open_store(settings)
    try:
        for n in range(30):  # 30 events older than 7 days
            store.events.emit(Event(Level.INFO, "t", f"old {n}", time=now - 8 * day + n))
        for n in range(80):  # 80 recent ones, 30 over the row limit
            store.events.emit(Event(Level.INFO, "t", f"new {n}", time=now - day + n))
        await store.events.flush()
        await store.ledger.want("c.example.com", "file")
        await store.stages.record_check(
            "c.example.com", "dns", ok=False, summary="old", now=now - 9 * day
        )
        await store.stages.record_check("c.example.com", "dns", ok=True, summary="fresh", now=now)

        result = await store.prune(now=now, chunk=7)  # several chunks each
        assert (result.events_by_age, result.events_by_count, result.checks_by_age) == (30, 30, 1)
        assert result.total == 61
        remaining = await store.event_log.page(limit=1000)
        assert [e.message for e in remaining] == [f"new {n}" for n in reversed(range(30, 80))]
        assert [c.summary for c in await store.stages.history("c.example.com")] == ["fresh"]

        again = await store.prune(now=now, chunk=7)
        assert again.total == 0
    finally:
        await store.aclose()


async def test_check_history_over_max_checks_goes_oldest_first(tmp_path: Path) -> None:
    """A resolver outage makes a check per domain per interval that counts no try: the
    history is held to max_checks rows even when every row is recent."""
    now = 1_800_000_000.0
    settings = StoreSettings(path=tmp_path / "state.sqlite3", retention_days=7, max_checks=5)
    store = await open_store(settings)
    try:
        names = ["a.example.com", "b.example.com", "c.example.com"]
        for name in names:
            await store.ledger.want(name, "file")
        for n in range(12):  # every row a minute apart, all within the retention
            name = names[n % 3]
            await store.stages.record_check(
                name, "dns", ok=False, summary=f"check {n}", now=now - 600 + 60 * n
            )
        result = await store.prune(now=now, chunk=2)
        assert (result.checks_by_age, result.checks_by_count) == (0, 7)
        kept = [c.summary for name in names for c in await store.stages.history(name)]
        assert sorted(kept, key=lambda text: int(text.split()[1])) == [
            f"check {n}" for n in range(7, 12)
        ]
        assert (await store.prune(now=now, chunk=2)).total == 0
    finally:
        await store.aclose()


async def test_events_keep_landing_while_prune_runs(tmp_path: Path) -> None:
    settings = StoreSettings(path=tmp_path / "state.sqlite3", retention_days=1, max_events=10**6)
    store = await open_store(settings, StoreOptions(batch_size=50, batch_interval_s=0.001))
    try:
        old = time.time() - 3 * 86_400
        for n in range(3000):
            store.events.emit(Event(Level.DEBUG, "t", f"old {n}", time=old))
        await store.events.flush()

        async def trickle() -> None:
            for n in range(100):
                store.events.emit(make_event(Level.INFO, "t", f"live {n}"))
                await asyncio.sleep(0)

        result, _ = await asyncio.gather(store.prune(chunk=100), trickle())
        await store.events.flush()
        assert result.events_by_age == 3000
        assert await store.event_log.count() == 100
    finally:
        await store.aclose()


async def test_the_stores_writers_take_turns_in_the_order_they_came(store: Store) -> None:
    """The event writer writes in many short transactions; a state write that comes while
    one is open goes next, before the event writer's next one (SQLite's busy handler would
    let whoever retries first win, and keep the other sleeping)."""
    state, events = store._state, store._events_db
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def write(db: Any, name: str, hold: bool = False) -> None:
        async with db.transaction(f"test write {name}") as conn:
            order.append(name)
            if hold:
                inside.set()
                await release.wait()
            await conn.execute("SELECT 1")

    first = asyncio.create_task(write(events, "events-1", hold=True))
    await asyncio.wait_for(inside.wait(), 5)
    ledger = asyncio.create_task(write(state, "ledger"))
    await asyncio.sleep(0)  # the ledger's write is waiting its turn now
    second = asyncio.create_task(write(events, "events-2"))
    await asyncio.sleep(0)
    assert order == ["events-1"]
    release.set()
    await asyncio.wait_for(asyncio.gather(first, ledger, second), 5)
    assert order == ["events-1", "ledger", "events-2"]
