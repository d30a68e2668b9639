"""The TUI driven headless with Textual's pilot, against a real control server and store:
filtering, follow and pause, read-only users, and reconnecting after a restart."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from control_fixtures import NOW, Running, running, running_server, socket_dir
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Static

from closte_sync.daemon.control.server import ControlServer
from closte_sync.daemon.events import Level, make_event
from closte_sync.daemon.settings import SocketSettings
from closte_sync.shared.protocol import Push, PushMessage
from closte_sync.tui.app import ClosteSyncApp
from closte_sync.tui.link import Backoff
from closte_sync.tui.messages import ConnectionChanged, StatusUpdated
from closte_sync.tui.widgets.log_view import LogView

__all__ = ["running", "socket_dir"]

SIZE = (140, 40)


class Messages:
    """Every message the app processes, to wait on instead of sleeping."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._changed = asyncio.Event()

    def hook(self, message: Message) -> None:
        self.seen.append(message)
        self._changed.set()

    async def wait(self, predicate: Callable[[Message], bool], timeout: float = 15) -> Message:
        async def scan() -> Message:
            index = 0
            while True:
                for message in self.seen[index:]:
                    if predicate(message):
                        return message
                index = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    def clear(self) -> None:
        self.seen.clear()


def make_app(path: Path) -> ClosteSyncApp:
    return ClosteSyncApp(path, clock=lambda: NOW, backoff=Backoff(0.05, 0.2), blink=False)


@asynccontextmanager
async def tui(path: Path) -> AsyncIterator[tuple[ClosteSyncApp, Pilot[None], Messages]]:
    app = make_app(path)
    messages = Messages()
    async with app.run_test(size=SIZE, message_hook=messages.hook) as pilot:
        await asyncio.wait_for(app.ready.wait(), 15)
        yield app, pilot, messages


def table(app: ClosteSyncApp) -> DataTable[object]:
    return app.main.query_one("#domains-table", DataTable)


def text_of(app: ClosteSyncApp, selector: str) -> str:
    return str(app.main.query_one(selector, Static).render())


async def test_domains_show_every_column_and_filter_as_typed(running: Running) -> None:
    async with tui(running.path) as (app, pilot, _):
        assert table(app).row_count == 4
        assert table(app).get_row("blog.example.org")[3].plain == "checking-dns"
        assert "done 1" in text_of(app, "#counts") and "failed 1" in text_of(app, "#counts")

        await pilot.press("slash", *"broken")
        assert table(app).row_count == 1
        assert table(app).get_row_at(0)[0] == "broken.example.com"
        await pilot.press("escape")
        assert table(app).row_count == 4

        await pilot.press("slash", *"^(shop|blog)", "enter")
        assert sorted(str(key.value) for key in table(app).rows) == [
            "blog.example.org",
            "shop.example.com",
        ]


async def test_selecting_a_domain_shows_its_dns_certificate_and_hints(running: Running) -> None:
    async with tui(running.path) as (app, pilot, _):
        pane = app.main.query_one("#domains-pane")
        table(app).focus()
        await pilot.press("down")  # the second row: broken.example.com
        pane.detail_shown.clear()  # type: ignore[attr-defined]
        await pilot.press("up")  # back to blog.example.org
        await asyncio.wait_for(pane.detail_shown.wait(), 15)  # type: ignore[attr-defined]
        detail = text_of(app, "#detail-body")
        assert "answers:  203.0.113.9" in detail and "expected: 127.0.0.10" in detail
        assert "Hint: Check the domain's DNS" in detail
        assert "DNS propagation not finished" in detail


async def test_a_domain_change_updates_its_row_in_place(running: Running) -> None:
    async with tui(running.path) as (app, _, messages):
        await running.store.ledger.record_failure("shop.example.com", "HTTP 500 from Closte")
        running.hub.domain_changed("shop.example.com")
        await messages.wait(lambda m: type(m).__name__ == "RowsChanged")
        assert table(app).get_row("shop.example.com")[8].plain == "HTTP 500 from Closte"
        assert table(app).row_count == 4


async def test_a_burst_of_pushed_domains_reaches_the_panes_as_one_change(
    running: Running,
) -> None:
    """A check round pushes thousands of domains; the panes catch up once per burst, not
    once per domain (each catch-up reads every row)."""
    async with tui(running.path) as (app, _, messages):
        template = app.rows["blog.example.org"].to_json()
        names = [f"new-{i:02d}.example.net" for i in range(30)]
        messages.clear()
        for name in names:  # as the link hands over a burst of pushes
            app._on_push(
                PushMessage(Push.DOMAIN, {"domain": name, "row": {**template, "domain": name}})
            )
        changed = await messages.wait(lambda m: type(m).__name__ == "RowsChanged")
        assert changed.names == frozenset(names)  # type: ignore[attr-defined]
        assert [m for m in messages.seen if type(m).__name__ == "RowsChanged"] == [changed]
        assert table(app).row_count == 4 + len(names)
        assert {str(key.value) for key in table(app).rows} >= set(names)


async def test_the_log_follows_pauses_when_scrolled_up_and_counts_new_lines(
    running: Running,
) -> None:
    async with tui(running.path) as (app, pilot, messages):
        await pilot.press("tab")
        view = app.main.query_one(LogView)
        for i in range(120):
            running.hub.emit(make_event(Level.INFO, "flood", f"line {i}"))
        await messages.wait(lambda m: isinstance(m, LogView.Updated) and m.total == 125)
        assert view.follow and text_of(app, "#follow-badge").strip() == "FOLLOW"
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0

        view.focus()
        await pilot.press("pageup")
        assert not view.follow
        assert text_of(app, "#follow-badge").strip() == "PAUSED"
        for i in range(3):
            running.hub.emit(make_event(Level.WARNING, "flood", f"while paused {i}"))
        await messages.wait(lambda m: isinstance(m, LogView.Updated) and m.total == 128)
        assert view.unseen == 3 and text_of(app, "#new-marker").strip() == "+3 new"
        assert view.scroll_y < view.max_scroll_y

        await pilot.press("f")
        await pilot.pause()
        assert view.follow and view.unseen == 0 and text_of(app, "#new-marker") == ""
        assert view.scroll_y == view.max_scroll_y


async def test_log_filters_go_to_the_daemon_and_matches_are_highlighted(
    running: Running,
) -> None:
    async with tui(running.path) as (app, pilot, messages):
        await pilot.press("tab")
        view = app.main.query_one(LogView)
        messages.clear()
        await pilot.press("slash", *"PASS")
        await messages.wait(lambda m: isinstance(m, LogView.Updated) and m.total == 2)
        rows = [view.model.row(i) for i in range(view.model.total)]
        assert [r.message for r in rows if r] == ["pass started", "pass finished"]
        assert view.highlight == "PASS"
        strip = view.render_line(0)
        assert any(seg.style and seg.style.reverse for seg in strip if seg.text.lower() == "pass")


async def test_retry_from_the_keyboard_reaches_the_daemon(running: Running) -> None:
    async with tui(running.path) as (app, pilot, _):
        table(app).focus()
        await pilot.press("r")
        await asyncio.wait_for(running.actions.called.wait(), 15)
        assert running.actions.calls == [("retry", "blog.example.org")]
        assert app.check_action("retry", ()) is True


async def test_the_interval_is_checked_as_typed_and_applied_live(running: Running) -> None:
    async with tui(running.path) as (app, pilot, messages):
        await pilot.press("4")
        field = app.main.query_one("#set-interval_s")
        field.focus()
        await pilot.press(*"5")
        assert "from 10 to 300" in text_of(app, "#check-interval_s")
        await pilot.press("enter")
        assert running.actions.calls == []  # refused before it was sent
        await pilot.press("backspace", *"30", "enter")
        await asyncio.wait_for(running.actions.called.wait(), 15)
        assert running.actions.calls[0][1][:2] == ("interval_s", 30)
        await messages.wait(
            lambda m: isinstance(m, StatusUpdated) and "operator" in text_of(app, "#now-interval_s")
        )
        assert text_of(app, "#now-interval_s") == "now 30 s, from set live by an operator"


async def test_the_tui_says_when_the_daemon_goes_away_and_comes_back(socket_dir: Path) -> None:
    async with running_server(socket_dir) as up, tui(up.path) as (app, pilot, messages):
        table(app).focus()
        await pilot.press("slash", *"example.com", "enter")
        assert table(app).row_count == 2
        messages.clear()

        await up.server.aclose()
        await messages.wait(
            lambda m: isinstance(m, ConnectionChanged) and m.state == "disconnected"
        )
        assert "DISCONNECTED" in text_of(app, "#badge")
        assert app.check_action("retry", ()) is None

        # The daemon restarts on the same socket, with the same store.
        again = ControlServer(SocketSettings(path=up.path), up.store, up.actions, up.hub)
        await again.start()
        try:
            app.ready.clear()
            await messages.wait(
                lambda m: isinstance(m, ConnectionChanged) and m.state == "connected"
            )
            await asyncio.wait_for(app.ready.wait(), 15)
            assert "CONNECTED" in text_of(app, "#badge")
            assert table(app).row_count == 2  # the filter survived the reconnect
            assert app.check_action("retry", ()) is True
        finally:
            await again.aclose()


def connect_as_nobody(path: Path) -> socket.socket:
    """A socket a forked child connected while running as nobody, handed back over a
    socketpair: the server sees nobody's credentials, the test drives the TUI."""
    nobody = pwd.getpwnam("nobody")
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            ours.close()
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(str(path))
            socket.send_fds(theirs, [b"s"], [conn.fileno()])
        finally:
            os._exit(0)
    theirs.close()
    try:
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    assert fds, "the child could not connect as nobody"
    return socket.socket(fileno=fds[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
async def test_a_read_only_user_sees_actions_greyed_out_with_why(socket_dir: Path) -> None:
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    async with running_server(socket_dir, group=group) as up:

        async def open_socket() -> socket.socket:
            return await asyncio.to_thread(connect_as_nobody, up.path)

        app = ClosteSyncApp(
            up.path,
            clock=lambda: NOW,
            backoff=Backoff(0.05, 0.2),
            blink=False,
            open_socket=open_socket,
        )
        async with app.run_test(size=SIZE) as pilot:
            await asyncio.wait_for(app.ready.wait(), 15)
            assert table(app).row_count == 4  # looking is allowed
            assert app.check_action("retry", ()) is None  # greyed out, not hidden
            greyed = [
                active.binding.key
                for active in app.active_bindings.values()
                if active.binding.action == "retry" and not active.enabled
            ]
            assert greyed == ["r"]
            await pilot.press("r")
            await pilot.press("4")
            buttons = {b.id: b.disabled for b in app.main.query(Button)}
            assert buttons and all(buttons.values()), buttons
            assert text_of(app, "#read-only-notice").startswith(
                f"Read only: member of group '{group}'"
            )
            assert "READ ONLY" in text_of(app, "#role")
        assert up.actions.calls == []


async def test_paging_back_to_the_oldest_event_fetches_only_what_is_shown(
    running: Running,
) -> None:
    for i in range(2600):
        running.store.events.emit(make_event(Level.DEBUG, "bulk", f"bulk {i}"))
    await running.store.events.flush()
    async with tui(running.path) as (app, pilot, messages):
        await pilot.press("2")
        view = app.main.query_one(LogView)
        assert view.model.total == 2605
        assert view.model.row(2604).message == "bulk 2599"  # type: ignore[union-attr]
        assert view.model.row(0) is None  # not fetched: only the newest page is held
        messages.clear()
        view.focus()
        await pilot.press("home")
        await messages.wait(
            lambda m: isinstance(m, LogView.Updated) and view.model.row(0) is not None
        )
        assert not view.follow
        assert view.model.row(0).message == "pass started"  # type: ignore[union-attr]
        assert view.model.row(5).message == "bulk 0"  # type: ignore[union-attr]
        assert "pass started" in "".join(seg.text for seg in view.render_line(0))


async def test_sorting_help_and_the_command_palette(running: Running) -> None:
    async with tui(running.path) as (app, pilot, _):
        pane = app.main.query_one("#domains-pane")
        table(app).focus()
        await pilot.press("s")  # domain -> source
        assert pane.sort_column == ("origin", False)  # type: ignore[attr-defined]
        assert table(app).get_row_at(0)[1] == "database"
        await pilot.press("S")
        assert table(app).get_row_at(0)[1] == "site"

        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert app.screen is app.main

        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Resync now", "Test the Closte connection", "Go to Logs"} <= set(titles)


async def test_settings_show_the_held_plan_and_run_the_actions(running: Running) -> None:
    running.actions.status["held_plan"] = {
        "id": "plan-7f3a",
        "domains": ["old-1.example.com", "old-2.example.com"],
    }
    async with tui(running.path) as (app, pilot, messages):
        await pilot.press("4")
        plan = text_of(app, "#held-plan")
        assert "Plan plan-7f3a removes exactly these aliases" in plan
        assert "old-1.example.com" in plan and "old-2.example.com" in plan
        assert "removals held" in text_of(app, "#last-pass")

        messages.clear()
        await pilot.click("#release")
        await messages.wait(lambda m: isinstance(m, StatusUpdated))
        assert ("release", "plan-7f3a") in running.actions.calls
        assert text_of(app, "#held-plan") == "None: the guard holds nothing back."

        settings = app.main.query_one("#settings-pane")
        worker = settings.test_closte()  # type: ignore[attr-defined]
        await worker.wait()
        assert text_of(app, "#test-result").startswith("Closte accepted the key ck_l…")
