"""`closte-sync tui`: watch and steer the daemon over SSH. It talks only to the control
socket (never to the SQLite store), keeps itself connected, and shows a read-only user
what they may not do and why."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path, PurePath
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input, TabbedContent

from closte_sync.daemon.control.cli_support import age, role_text
from closte_sync.daemon.control.client import ControlClient, ControlError, DaemonUnavailable
from closte_sync.shared.protocol import DomainRow, Op, Push, PushMessage
from closte_sync.tui.commands import palette_commands
from closte_sync.tui.link import Backoff, DaemonLink
from closte_sync.tui.messages import ConnectionChanged, NewEvents, RowsChanged, StatusUpdated
from closte_sync.tui.screens.help import HelpScreen
from closte_sync.tui.screens.main import TABS, MainScreen
from closte_sync.tui.widgets.domains import DomainsPane
from closte_sync.tui.widgets.logs import LogsPane
from closte_sync.tui.widgets.settings import SettingsPane
from closte_sync.tui.widgets.topbar import TopBar
from closte_sync.tui.widgets.trouble import TroublePane

NEEDS_CHANGE = "needs root, the daemon's user or [socket] admin_group"


class ClosteSyncApp(App[None]):
    CSS_PATH: ClassVar[list[str | PurePath]] = ["app.tcss", "widgets/widgets.tcss"]
    TITLE = "closte-sync"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("f", "follow", "Follow"),
        Binding("r", "retry", "Retry", tooltip=f"Check the selected domain again ({NEEDS_CHANGE})"),
        Binding("tab", "switch_tab(1)", "Next screen", priority=True, show=False),
        Binding("shift+tab", "switch_tab(-1)", "Previous screen", priority=True, show=False),
        Binding("1", "show_tab('domains')", show=False),
        Binding("2", "show_tab('logs')", show=False),
        Binding("3", "show_tab('trouble')", show=False),
        Binding("4", "show_tab('settings')", show=False),
    ]

    connection_state: reactive[str] = reactive("connecting")
    may_change: reactive[bool] = reactive(False, bindings=True)

    def __init__(
        self,
        socket_path: Path,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        status_every_s: float = 5.0,
        blink: bool = True,
        open_socket: Callable[[], Awaitable[socket.socket]] | None = None,
    ) -> None:
        """``open_socket``: how to get a connected socket (default: connect to the path)."""
        super().__init__()
        self.socket_path = socket_path
        self.clock = clock
        self.status_every_s = status_every_s
        self.blink = blink
        self.rows: dict[str, DomainRow] = {}
        # Domains pushed since the panes last caught up: shown together, once per burst.
        self._pushed_names: set[str] = set()
        self.status: dict[str, Any] = {}
        self.role_reason = ""
        self.connection_detail = ""
        self._link = DaemonLink(
            socket_path,
            on_push=self._on_push,
            on_state=self._on_link_state,
            backoff=backoff or Backoff(),
            open_socket=open_socket,
        )
        self._client: ControlClient | None = None
        self._status_timer: Any = None
        self.main = MainScreen(clock)
        # Set once everything the panes show is loaded after (re)connecting.
        self.ready = asyncio.Event()

    # -- start ----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def start(self) -> None:
        """The main screen is up: connect (and keep connecting)."""
        if not self.blink:
            for field in self.main.query(Input):
                field.cursor_blink = False
        self._run_link()

    @work(exclusive=True, group="link", exit_on_error=False)
    async def _run_link(self) -> None:
        await self._link.run()

    @property
    def connected(self) -> bool:
        return self.connection_state == "connected"

    async def call(self, op: Op, **args: Any) -> Any:
        """One request to the daemon; DaemonUnavailable when not connected."""
        client = self._client
        if client is None:
            raise DaemonUnavailable(self.connection_detail or "not connected to the daemon")
        return await client.call(op, **args)

    # -- the link's callbacks -------------------------------------------------------------

    def _on_link_state(self, state: str, detail: str, client: ControlClient | None) -> None:
        was = self.connection_state
        self._client = client
        self.connection_detail = detail
        if client is not None:
            self.may_change = client.may_change
            self.role_reason = client.role_reason
        else:
            self.may_change = False
        self.connection_state = state
        bar = self.main.query_one(TopBar)
        if state != "connected":
            self.ready.clear()
        bar.query_one("#badge").tooltip = detail
        if state == "disconnected":
            bar.show_connection(
                state, f"(retry {self._link.attempt} in {self._link.next_retry_s:g} s)"
            )
            if was == "connected":
                self.notify(f"The daemon went away: {detail}", severity="warning", timeout=6)
            elif self._link.attempt == 1:
                self.notify(f"Cannot reach the daemon: {detail}", severity="error", timeout=8)
        else:
            bar.show_connection(state)
        self._show_access()
        if state == "connected":
            self.reload_all()
        self.post_message(ConnectionChanged(state, detail))

    def _on_push(self, message: PushMessage) -> None:
        if message.push == Push.EVENT:
            self.post_message(NewEvents())
        elif message.push == Push.DOMAIN:
            if message.data.get("reset"):
                self.load_rows()
                return
            name = str(message.data.get("domain", ""))
            raw = message.data.get("row")
            row = DomainRow.from_json(raw) if isinstance(raw, dict) else None
            if row is None:
                self.rows.pop(name, None)
            else:
                self.rows[name] = row
            # A check round pushes thousands of domains; each RowsChanged costs a pass over
            # every row (trouble list, counts), so the pushes queued now go out as one.
            if not self._pushed_names:
                self.call_later(self._rows_pushed)
            self._pushed_names.add(name)

    def _rows_pushed(self) -> None:
        names, self._pushed_names = frozenset(self._pushed_names), set()
        self.post_message(RowsChanged(names))

    # -- loading --------------------------------------------------------------------------

    @work(exclusive=True, group="reload", exit_on_error=False)
    async def reload_all(self) -> None:
        """Connected (again): fetch everything the panes show, keeping their filters."""
        self.ready.clear()
        await self._load_rows()
        await self._poll_status()
        await self.main.query_one(LogsPane).load()
        if self.connected:
            self.ready.set()

    @work(exclusive=True, group="rows", exit_on_error=False)
    async def load_rows(self) -> None:
        await self._load_rows()

    async def _load_rows(self) -> None:
        try:
            result = await self.call(Op.DOMAINS)
        except (DaemonUnavailable, ControlError):
            return
        self.rows = {row.domain: row for row in map(DomainRow.from_json, result["domains"])}
        self.on_rows_changed(RowsChanged(None))

    @work(exclusive=True, group="status", exit_on_error=False)
    async def poll_status(self) -> None:
        await self._poll_status()

    async def _poll_status(self) -> None:
        """Read the status, then poll again after the interval (polls never overlap)."""
        if self._status_timer is not None:
            self._status_timer.stop()
        try:
            self.status = await self.call(Op.STATUS)
        except (DaemonUnavailable, ControlError):
            return
        self._show_status()
        self.post_message(StatusUpdated())  # for observers: the status is on screen
        if self.connected:
            self._status_timer = self.set_timer(self.status_every_s, self.poll_status)

    def on_new_events(self, _message: NewEvents) -> None:
        for pane in self.main.query(LogsPane):  # none while the screen is still mounting
            pane.view.fetch_new()

    def on_rows_changed(self, message: RowsChanged) -> None:
        domains = self.main.query_one(DomainsPane)
        if message.names is None:
            domains.set_rows(self.rows.values())
        else:
            domains.update_rows({name: self.rows.get(name) for name in message.names})
        self.main.query_one(TroublePane).set_rows(self.rows.values())
        self.main.query_one(TopBar).show_counts(self.rows.values())

    def _show_status(self) -> None:
        daemon = self.status.get("daemon", {})
        last = daemon.get("last_good_pass_at")
        text = f"last good pass {age(last, self.clock())}" if last else "no good pass yet"
        if daemon.get("role") == "standby":  # its tables fill only once it leads
            text = role_text(daemon, self.clock()) + " · the leader acts"
        if daemon.get("held_plan"):
            text += " · removals held"
        self.main.query_one(TopBar).show_last_pass(text)
        self.main.query_one(SettingsPane).show_status(self.status)

    def _show_access(self) -> None:
        self.main.query_one(TopBar).show_role(self.may_change, self.connected)
        self.main.query_one(SettingsPane).show_access(
            self.may_change, self.connected, self.role_reason or NEEDS_CHANGE
        )

    # -- keys -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("retry", "resync", "retry_domain", "set_value", "release"):
            return True if (self.may_change and self.connected) else None
        if action == "follow":
            return True if self._active_tab() == "logs" else None
        return True

    def _active_tab(self) -> str:
        try:
            return self.main.query_one(TabbedContent).active
        except Exception:
            return ""

    def show_tab(self, tab: str, then: str | None = None) -> None:
        self.main.query_one(TabbedContent).active = tab
        self.refresh_bindings()
        if then == "test_closte":
            self.main.query_one(SettingsPane).test_closte()
        elif then == "interval":
            self.main.query_one("#set-interval_s", Input).focus()

    def action_show_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def action_switch_tab(self, step: int) -> None:
        current = self._active_tab()
        index = TABS.index(current) if current in TABS else 0
        self.show_tab(TABS[(index + step) % len(TABS)])

    def on_tabbed_content_tab_activated(self) -> None:
        self.refresh_bindings()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        tab = self._active_tab()
        if tab == "logs":
            self.main.query_one(LogsPane).focus_filter()
        else:
            self.show_tab("domains")
            self.main.query_one(DomainsPane).focus_filter()

    def action_follow(self) -> None:
        self.main.query_one(LogsPane).toggle_follow()

    def action_reconnect(self) -> None:
        self._link.retry_now()

    def _selected_domain(self) -> str | None:
        if self._active_tab() == "trouble":
            return self.main.query_one(TroublePane).selected
        return self.main.query_one(DomainsPane).selected

    def action_retry(self) -> None:
        domain = self._selected_domain()
        if domain is None:
            self.notify("Select a domain first", severity="warning")
            return
        self.action_retry_domain(domain)

    def action_retry_domain(self, domain: str) -> None:
        self._change(Op.RETRY, domain=domain)

    def action_resync(self) -> None:
        self._change(Op.RESYNC)

    def action_set_value(self, key: str, value: int) -> None:
        self._change(Op.SET, key=key, value=value, then_status=True)

    def action_release(self, plan_id: str) -> None:
        self._change(Op.RELEASE, plan_id=plan_id, then_status=True)

    @work(group="changes", exit_on_error=False)
    async def _change(self, op: Op, then_status: bool = False, **args: Any) -> None:
        if not (self.may_change and self.connected):
            self.notify(f"Not allowed: {self.role_reason or NEEDS_CHANGE}", severity="error")
            return
        try:
            result = await self.call(op, **args)
        except ControlError as exc:
            self.notify(exc.message, title=f"{op.value} refused", severity="error")
            return
        except DaemonUnavailable as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(str(result.get("message", "done")), title=op.value)
        if then_status:
            self.poll_status()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from palette_commands(self)
