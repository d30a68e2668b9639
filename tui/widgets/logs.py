"""The logs screen: the live event log with level, domain and text filters, a FOLLOW
badge, and a "+N new" marker while paused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static

from closte_sync.shared.protocol import LEVELS, event_filter_args
from closte_sync.tui.widgets.log_view import LogView


class LogsPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "clear_filter", "Clear filter")]

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock

    def compose(self) -> ComposeResult:
        with Horizontal(classes="filter-bar"):
            yield Select(
                [(level, level) for level in LEVELS],
                prompt="any level",
                id="log-level",
                compact=True,
            )
            yield Input(placeholder="domain", id="log-domain")
            yield Input(placeholder="text /", id="log-text")
            yield Static(" FOLLOW ", id="follow-badge", classes="badge following")
            yield Static("", id="new-marker")
        yield LogView(clock=self._clock, id="log-view")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def current_filter(self) -> dict[str, Any]:
        level = self.query_one("#log-level", Select).value
        return event_filter_args(
            level=level if isinstance(level, str) else None,
            domain=self.query_one("#log-domain", Input).value.strip().lower() or None,
            text=self.query_one("#log-text", Input).value or None,
        )

    def reload(self) -> None:
        text = self.query_one("#log-text", Input).value
        self.view.reload(self.current_filter(), text)

    async def load(self) -> None:
        """Like ``reload``, but waits until the newest page is shown."""
        text = self.query_one("#log-text", Input).value
        await self.view.load(self.current_filter(), text)

    def focus_filter(self) -> None:
        self.query_one("#log-text", Input).focus()

    def action_clear_filter(self) -> None:
        for selector in ("#log-domain", "#log-text"):
            self.query_one(selector, Input).value = ""
        self.query_one("#log-level", Select).clear()
        self.view.focus()

    def toggle_follow(self) -> None:
        self.view.set_follow(not self.view.follow)

    @on(Input.Changed, "#log-domain, #log-text")
    @on(Select.Changed, "#log-level")
    def _filter_changed(self) -> None:
        self.reload()

    @on(Input.Submitted)
    def _filter_done(self) -> None:
        self.view.focus()

    @on(LogView.FollowChanged)
    def _follow_changed(self, event: LogView.FollowChanged) -> None:
        badge = self.query_one("#follow-badge", Static)
        badge.update(" FOLLOW " if event.follow else " PAUSED ")
        badge.set_classes("badge following" if event.follow else "badge paused")
        marker = self.query_one("#new-marker", Static)
        marker.update(f" +{event.unseen} new " if event.unseen and not event.follow else "")
