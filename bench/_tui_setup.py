"""Helpers for bench/tui.py: a store full of events, a probe that sees what the log view
paints, the in-process control server that emits events at a steady rate, and a headless
TUI that follows the log in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the daemon harness and the control fixtures

from closte_sync.daemon.events import Level, make_event  # noqa: E402
from closte_sync.daemon.settings import StoreSettings  # noqa: E402
from closte_sync.daemon.store import open_store  # noqa: E402
from closte_sync.shared.protocol import EventRow  # noqa: E402
from closte_sync.tui.app import ClosteSyncApp  # noqa: E402
from closte_sync.tui.widgets.log_view import LogView  # noqa: E402

SIZE = (160, 48)
DOMAINS = 1000
FOLLOW_KIND = "bench-follow"
STAMP = re.compile(r"seq=(\d+) at=([0-9.]+)")


def domain_name(n: int) -> str:
    return f"d{n}.bench.test"


# -- a store with a million events --------------------------------------------------------


def _rows(count: int, now: float) -> Iterator[tuple[float, int, str, str | None, str, str]]:
    """Events as the daemon writes them: mostly per domain, some for the whole pass, one a
    second back from ``now`` (about 12 days for a million, inside the 30-day retention)."""
    rng = random.Random(7)
    levels = (20,) * 14 + (10, 30, 30, 40)
    for i in range(count):
        at = now - (count - i)
        n = rng.randrange(DOMAINS)
        if i % 10 == 0:
            yield at, 20, "reconcile", None, f"pass {i // 10}: 0 to add, 0 to remove", "{}"
        else:
            domain = domain_name(n)
            yield (
                at,
                rng.choice(levels),
                f"domain-{domain}",
                domain,
                f"Checking DNS for {domain} (try {i % 5 + 1})",
                f'{{"step": {i % 7}}}',
            )


async def fill_store(path: Path, count: int) -> None:
    """Create the store with the daemon's own schema, then write ``count`` events in bulk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = await open_store(StoreSettings(path=path))
    await store.aclose()
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                "INSERT INTO events (time, level, kind, domain, message, details)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                _rows(count, time.time()),
            )
    finally:
        db.close()


def newest_of(path: Path, domain: str | None = None) -> int:
    db = sqlite3.connect(path)
    try:
        if domain is None:
            row = db.execute("SELECT max(id) FROM events").fetchone()
        else:
            row = db.execute("SELECT max(id) FROM events WHERE domain = ?", (domain,)).fetchone()
        return int(row[0] or 0)
    finally:
        db.close()


def follow_stamps(path: Path, after_id: int) -> dict[int, float]:
    """seq -> when it was emitted, read back from the messages the harness wrote."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT message FROM events WHERE kind = ? AND id > ?", (FOLLOW_KIND, after_id)
        ).fetchall()
    finally:
        db.close()
    stamps = {}
    for (message,) in rows:
        found = STAMP.search(message)
        if found:
            stamps[int(found[1])] = float(found[2])
    return stamps


# -- what the log view paints ---------------------------------------------------------------


@dataclass(frozen=True)
class Painted:
    at: float  # time.monotonic() when the compositor asked for the line
    generation: int  # the view's filter generation then
    event: EventRow


class PaintProbe:
    """Wraps one LogView's ``render_line``: every event row the compositor paints is noted
    once per filter generation, with the time, so "on screen" means painted, not loaded."""

    def __init__(self, view: LogView) -> None:
        self.view = view
        self.painted: list[Painted] = []
        self._seen: set[tuple[int, int]] = set()
        self._new = asyncio.Event()
        original = view.render_line

        def render_line(y: int) -> object:
            strip = original(y)
            event = view.model.row(int(view.scroll_offset.y) + y)
            if event is not None and event.id is not None:
                key = (view.model.generation, event.id)
                if key not in self._seen:
                    self._seen.add(key)
                    self.painted.append(Painted(time.monotonic(), key[0], event))
                    self._new.set()
            return strip

        setattr(view, "render_line", render_line)  # noqa: B010 - an instance wrapper

    async def wait(
        self, found: Callable[[Painted], bool], timeout: float, since: int = 0
    ) -> Painted:
        """The first row painted (from index ``since``) that ``found`` accepts."""
        index = since
        async with asyncio.timeout(timeout):
            while True:
                for item in self.painted[index:]:
                    if found(item):
                        return item
                index = len(self.painted)
                self._new.clear()
                await self._new.wait()


def make_app(socket_path: Path) -> ClosteSyncApp:
    return ClosteSyncApp(socket_path, blink=False)


# -- the in-process daemon side: a real ControlServer and ControlHub over a real store --------


async def serve(store_path: Path, socket_path: Path, rate: int, seconds: float) -> None:
    """Serve the store on the socket; on "go" from stdin emit ``rate`` events a second for
    ``seconds`` through the hub (each stamped with its seq and time.monotonic()), print
    "done N", and serve until stdin closes."""
    from control_fixtures import FakeActions

    from closte_sync.daemon.control.hub import ControlHub
    from closte_sync.daemon.control.server import ControlServer
    from closte_sync.daemon.settings import SocketSettings

    store = await open_store(StoreSettings(path=store_path))
    hub = ControlHub(store.events)
    server = ControlServer(SocketSettings(path=socket_path), store, FakeActions(), hub)
    await server.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    try:
        await reader.readline()
        total = int(rate * seconds)
        tick = 0.01
        start = time.monotonic()
        seq = 0
        while seq < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            while seq < due:
                domain = domain_name(seq % DOMAINS)
                hub.emit(
                    make_event(
                        Level.INFO,
                        FOLLOW_KIND,
                        f"seq={seq} at={time.monotonic():.6f}",
                        domain=domain,
                    )
                )
                seq += 1
            await asyncio.sleep(tick)
        await store.events.flush()
        print(f"done {total}", flush=True)
        await reader.read()
    finally:
        await server.aclose()
        await store.aclose()


# -- a TUI that follows the log, in its own process -------------------------------------------


async def follow_worker(socket_path: Path) -> None:
    """A headless TUI on the Logs screen, following; prints "following" once the first page
    is painted and runs until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    app = make_app(socket_path)
    async with app.run_test(size=SIZE) as pilot:
        probe = PaintProbe(app.main.query_one(LogView))
        await pilot.press("2")
        await probe.wait(lambda p: True, 60)
        print("following", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await reader.read()
