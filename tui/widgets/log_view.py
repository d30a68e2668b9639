"""A virtual log: only the lines on screen are rendered, rows come from ``LogModel`` a page
at a time. Follow mode keeps the newest line in view; scrolling up pauses it and counts
what arrives meanwhile ("+N new")."""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from closte_sync.daemon.control.client import ControlError, DaemonUnavailable
from closte_sync.shared.protocol import EventRow, Op
from closte_sync.tui.widgets.log_model import LogModel

LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "error": "bold red",
}
CACHE_LINES = 2000

TAIL_RETRY_S = 0.5  # longer than the event writer's batch interval


class LogView(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        ("up", "scroll_up", "Up"),
        ("down", "scroll_down", "Down"),
        ("pageup", "page_up", "Page up"),
        ("pagedown", "page_down", "Page down"),
        ("home", "scroll_home", "Oldest"),
        ("end", "scroll_end", "Newest"),
    ]

    follow: reactive[bool] = reactive(True)
    unseen: reactive[int] = reactive(0)

    class Updated(Message):
        """Rows were loaded or appended; ``total`` lines now."""

        def __init__(self, total: int) -> None:
            super().__init__()
            self.total = total

    class FollowChanged(Message):
        def __init__(self, follow: bool, unseen: int) -> None:
            super().__init__()
            self.follow = follow
            self.unseen = unseen

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = LogModel()
        self.highlight = ""
        self._clock = clock
        self._lines: OrderedDict[tuple[int, int], Strip] = OrderedDict()
        self._loading = False
        self._tailing = False
        self._more_new = False

    # -- data -----------------------------------------------------------------------------

    async def _call(self, op: Op, **args: object) -> dict[str, object]:
        result: dict[str, object] = await self.app.call(op, **args)  # type: ignore[attr-defined]
        return result

    @work(exclusive=True, group="log-load", exit_on_error=False)
    async def reload(self, flt: dict[str, object], highlight: str = "") -> None:
        await self.load(flt, highlight)

    async def load(self, flt: dict[str, object], highlight: str = "") -> None:
        """Start again with a new filter: newest page, count, then what came since."""
        self.model.reset(dict(flt))
        self.highlight = highlight
        generation = self.model.generation
        self._relayout()
        try:
            first = await self._call(Op.EVENTS, filter=flt, limit=500)
            count = await self._call(Op.EVENT_COUNT, filter=flt)
        except (DaemonUnavailable, ControlError):
            return
        if generation != self.model.generation:
            return
        events = [EventRow.from_json(e) for e in first["events"]]  # type: ignore[attr-defined]
        self.model.load(events, int(count["count"]))  # type: ignore[call-overload]
        self.unseen = 0
        await self._fetch_newer()
        self._relayout()
        if self.follow:
            self._to_end()
        self._want_visible()
        self.post_message(self.Updated(self.model.total))

    def fetch_new(self) -> None:
        """Events arrived: fetch what is newer than the newest row held. Pushes that come
        while a fetch runs are folded into one more fetch after it, never a restart: at a
        thousand events a second a restarted fetch would never finish."""
        self._more_new = True
        if not self._tailing:
            self._tailing = True
            self._tail()

    @work(group="log-tail", exit_on_error=False)
    async def _tail(self) -> None:
        try:
            while self._more_new:
                self._more_new = False
                if not await self._fetch_newer():
                    # The daemon pushes an event before its writer has stored it (it
                    # batches for up to 0.2 s): look once more when it surely has.
                    await asyncio.sleep(TAIL_RETRY_S)
                    await self._fetch_newer()
        finally:
            self._tailing = False

    async def _fetch_newer(self) -> int:
        """Fetch newer rows; how many were added."""
        total = 0
        newest = self.model.newest_id
        generation = self.model.generation
        while True:
            try:
                result = await self._call(
                    Op.EVENTS_AFTER, after_id=newest or 0, filter=self.model.filter, limit=1000
                )
            except (DaemonUnavailable, ControlError):
                return total
            if generation != self.model.generation:
                return total
            events = [EventRow.from_json(e) for e in result["events"]]  # type: ignore[attr-defined]
            added = self.model.append(events)
            total += added
            if added:
                if not self.follow:
                    self.unseen += added
                self._relayout()
                if self.follow:
                    self._to_end()
                self.post_message(self.Updated(self.model.total))
            if len(events) < 1000:
                return total
            newest = self.model.newest_id

    def _want_visible(self) -> None:
        top = int(self.scroll_offset.y)
        needed = self.model.pages_for(top, top + self.size.height)
        if needed and not self._loading:
            self._load_pages(needed)

    @work(exclusive=True, group="log-pages", exit_on_error=False)
    async def _load_pages(self, pages: list[int]) -> None:
        self._loading = True
        try:
            for page in pages:
                await self.model.fetch(page, lambda **a: self._call(Op.EVENTS, **a))
        except (DaemonUnavailable, ControlError):
            return
        finally:
            self._loading = False
        self._lines.clear()
        self._relayout()
        self.refresh()
        self.post_message(self.Updated(self.model.total))
        self._want_visible()

    # -- follow ---------------------------------------------------------------------------

    def set_follow(self, follow: bool) -> None:
        self.follow = follow
        if follow:
            self.unseen = 0
            self._to_end()

    def watch_follow(self, follow: bool) -> None:
        self.post_message(self.FollowChanged(follow, self.unseen))

    def watch_unseen(self, unseen: int) -> None:
        self.post_message(self.FollowChanged(self.follow, unseen))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        at_end = new >= self.max_scroll_y
        if new < old and not at_end and self.follow:
            self.follow = False  # the operator scrolled up to read: stop following
        elif at_end and not self.follow and old != new:
            self.set_follow(True)
        self._want_visible()

    def _to_end(self) -> None:
        # At once, and forced: the scrollbar that allows scrolling appears only after the
        # next layout, and waiting for it would let a burst of lines scroll past.
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def action_scroll_end(self) -> None:
        self.set_follow(True)

    # -- rendering ------------------------------------------------------------------------

    def _relayout(self) -> None:
        self._lines.clear()
        self.virtual_size = Size(self.scrollable_content_region.width, self.model.total)
        self.refresh()

    def on_resize(self) -> None:
        self._relayout()
        if self.follow:
            self._to_end()

    def render_line(self, y: int) -> Strip:
        line = int(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        key = (line, width)
        cached = self._lines.get(key)
        if cached is not None:
            return cached
        event = self.model.row(line)
        if event is None:
            if line < self.model.total:
                self._want_visible()
                return Strip([Segment("…", Style(dim=True))]).adjust_cell_length(width)
            return Strip.blank(width)
        strip = self._strip(event, width)
        self._lines[key] = strip
        if len(self._lines) > CACHE_LINES:
            self._lines.popitem(last=False)
        return strip

    def _strip(self, event: EventRow, width: int) -> Strip:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(event.time)), "dim")
        text.append(f"{event.level.upper():<7} ", LEVEL_STYLES.get(event.level, ""))
        text.append(f"{event.kind}: ", "cyan")
        text.append(event.message)
        if event.domain and event.domain not in event.kind:
            text.append(f" [{event.domain}]", "dim")
        if self.highlight:
            text.highlight_regex(re.compile(re.escape(self.highlight), re.IGNORECASE), "reverse")
        text.truncate(width)
        segments = list(text.render(self.app.console))
        return Strip(segments).adjust_cell_length(width)
