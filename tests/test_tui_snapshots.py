"""Snapshots of the TUI's screens (pytest-textual-snapshot), stable by construction: a
fixed clock, fixed rows, UTC, no cursor blink. Update with `pytest --snapshot-update`.

The screenshot runs the app in an event loop of its own, so the control server runs in a
thread with its own loop, against a real store."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from control_fixtures import NOW, running_server, socket_dir
from textual.pilot import Pilot
from textual.widgets import DataTable

from closte_sync.tui.app import ClosteSyncApp
from closte_sync.tui.link import Backoff
from closte_sync.tui.widgets.domains import DomainsPane

__all__ = ["socket_dir"]

SIZE = (130, 36)


class ServerThread:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "control.sock"
        self._loop = asyncio.new_event_loop()
        self._up = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start()
            self.error = exc
            self._up.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running_server(self.folder):
            self._up.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        assert self._up.wait(30), "the server did not start"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture
def server(socket_dir: Path) -> Iterator[ServerThread]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    thread = ServerThread(socket_dir)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


def app_for(server: ServerThread) -> ClosteSyncApp:
    return ClosteSyncApp(server.path, clock=lambda: NOW, backoff=Backoff(0.05, 0.2), blink=False)


# Workers that run for the app's whole life; every other one must be done before a picture.
LIFELONG_WORKERS = frozenset({"link"})


async def quiet(app: ClosteSyncApp) -> None:
    """Until no load is in flight (a detail or a status poll finishing after the picture
    would make it differ from run to run)."""
    while True:
        busy = [w for w in app.workers if w.is_running and w.group not in LIFELONG_WORKERS]
        if not busy:
            return
        # A worker cancelled by a newer one of its group counts as done.
        await asyncio.gather(*(w.wait() for w in busy), return_exceptions=True)


async def steady(pilot: Pilot[None], tries: int = 50) -> None:
    """Until two pictures in a row are the same: what a refresh changes is painted only
    when the app is next idle, which a loaded machine can put off past one pause."""
    previous = None
    for _ in range(tries):
        await pilot.pause()
        picture = pilot.app.export_screenshot()
        if picture == previous:
            return
        previous = picture
    raise AssertionError(f"the screen was still changing after {tries} pauses")


def loaded(*keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, ClosteSyncApp)
        await asyncio.wait_for(app.ready.wait(), 20)
        pane = app.main.query_one("#domains-pane")
        await asyncio.wait_for(pane.detail_shown.wait(), 20)  # type: ignore[attr-defined]
        await asyncio.wait_for(quiet(app), 20)
        if keys:
            await pilot.press(*keys)
            await asyncio.wait_for(quiet(app), 20)
        await steady(pilot)

    return run_before


def test_domains_screen(server: ServerThread, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app_for(server), terminal_size=SIZE, run_before=loaded())


def test_logs_screen(server: ServerThread, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app_for(server), terminal_size=SIZE, run_before=loaded("2"))


def test_troubleshooting_screen(server: ServerThread, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app_for(server), terminal_size=SIZE, run_before=loaded("3"))


def test_settings_screen(server: ServerThread, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app_for(server), terminal_size=SIZE, run_before=loaded("4"))


async def lines_painted_early(app: ClosteSyncApp, pilot: Pilot[None]) -> list[str]:
    """Paint the screen now, before the domains table is next idle (as a loaded machine
    may), then let it settle: the table's lines as they stay on screen."""
    app.export_screenshot()
    await asyncio.wait_for(quiet(app), 20)
    await steady(pilot)
    table = app.main.query_one(DomainsPane).query_one(DataTable)
    return [table.render_line(y).text for y in range(table.size.height)]


def test_domains_painted_before_idle(server: ServerThread) -> None:
    """New rows the screen paints before the table is next idle (as on a loaded machine)
    are shown whole, also once the table is idle: it keeps the cells it painted."""
    longer = "a-much-longer-name-than-the-others.example.com"

    async def run() -> None:
        app = app_for(server)
        async with app.run_test(size=SIZE) as pilot:
            await loaded()(pilot)
            pane = app.main.query_one(DomainsPane)
            pane.set_rows(
                [*app.rows.values(), replace(app.rows["blog.example.org"], domain=longer)]
            )
            lines = await lines_painted_early(app, pilot)
            for name in [*app.rows, longer]:
                assert any(f" {name} " in line for line in lines), (name, lines)

    asyncio.run(run())


def test_a_row_updated_in_place_widens_its_column(server: ServerThread) -> None:
    """A row that changes in place with a cell wider than its column (a longer state, as a
    domain moves on) gets the room, even when painted before the table is next idle."""
    state = "a-state-wider-than-any-before"

    async def run() -> None:
        app = app_for(server)
        async with app.run_test(size=SIZE) as pilot:
            await loaded()(pilot)
            row = replace(app.rows["blog.example.org"], state=state)
            app.main.query_one(DomainsPane).update_rows({row.domain: row})
            lines = await lines_painted_early(app, pilot)
            assert any(f" {state} " in line for line in lines), lines

    asyncio.run(run())
