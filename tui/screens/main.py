"""The one main screen: the top bar, the four panes in tabs, and the footer."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from closte_sync.tui.widgets.domains import DomainsPane
from closte_sync.tui.widgets.logs import LogsPane
from closte_sync.tui.widgets.settings import SettingsPane
from closte_sync.tui.widgets.topbar import TopBar
from closte_sync.tui.widgets.trouble import TroublePane

TABS = ("domains", "logs", "trouble", "settings")


class MainScreen(Screen[None]):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock

    def compose(self) -> ComposeResult:
        yield TopBar(id="topbar")
        with TabbedContent(id="tabs", initial="domains"):
            with TabPane("Domains", id="domains"):
                yield DomainsPane(clock=self._clock, id="domains-pane")
            with TabPane("Logs", id="logs"):
                yield LogsPane(clock=self._clock, id="logs-pane")
            with TabPane("Troubleshooting", id="trouble"):
                yield TroublePane(clock=self._clock, id="trouble-pane")
            with TabPane("Settings", id="settings"):
                yield SettingsPane(id="settings-pane")
        yield Footer()

    def on_mount(self) -> None:
        start = getattr(self.app, "start", None)
        if callable(start):
            start()
