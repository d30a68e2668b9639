"""The log view's rows, fetched a page at a time by keyset, never all at once.

Line 0 is the oldest matching event, the last line the newest. When loaded, the newest
event becomes the *anchor*: older rows are counted back from it (row r is the r-th newest
at or before the anchor) and fetched in pages of ``PAGE`` with ``before_id`` cursors; rows
newer than the anchor arrive live and are appended to ``tail``. Only a few pages are kept
(LRU); the cursor of every page seen is kept (one integer each), so scrolling back to any
of them is one request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from closte_sync.shared.protocol import EventRow

PAGE = 500
KEEP_PAGES = 40
MAX_TAIL = 20_000  # then the tail folds into the paged part

Fetch = Callable[..., Awaitable[Any]]


class LogModel:
    def __init__(self) -> None:
        self.filter: dict[str, Any] = {}
        self.anchor_id: int | None = None
        self.older_count = 0
        self.tail: list[EventRow] = []
        self._pages: OrderedDict[int, list[EventRow]] = OrderedDict()
        self._cursors: dict[int, int] = {}  # page -> before_id that fetches it
        self.generation = 0  # bumped on every reset: answers for an older one are dropped

    @property
    def total(self) -> int:
        return self.older_count + len(self.tail)

    @property
    def newest_id(self) -> int | None:
        return self.tail[-1].id if self.tail else self.anchor_id

    def reset(self, flt: dict[str, Any]) -> None:
        self.filter = flt
        self.anchor_id = None
        self.older_count = 0
        self.tail = []
        self._pages.clear()
        self._cursors.clear()
        self.generation += 1

    def load(self, first_page: list[EventRow], count: int) -> None:
        """The newest page (newest first) and how many events match in all."""
        self._pages.clear()
        self._cursors.clear()
        self.tail = []
        if not first_page or first_page[0].id is None:
            self.anchor_id = None
            self.older_count = 0
            return
        self.anchor_id = first_page[0].id
        self.older_count = max(count, len(first_page))
        self._cursors[0] = self.anchor_id + 1
        self._store_page(0, first_page)

    def append(self, events: list[EventRow]) -> int:
        """New events (oldest first) after the newest one held; returns how many were new."""
        newest = self.newest_id
        fresh = [e for e in events if e.id is not None and (newest is None or e.id > newest)]
        if self.anchor_id is None and fresh:
            # An empty view: the first arrivals become the anchor.
            self.anchor_id = fresh[0].id
            self.older_count = 1
            self._cursors[0] = fresh[0].id + 1  # type: ignore[operator]
            self._store_page(0, [fresh[0]])
            fresh = fresh[1:]
        self.tail.extend(fresh)
        if len(self.tail) > MAX_TAIL:
            self._fold_tail()
        return len(fresh)

    def _fold_tail(self) -> None:
        """Make the newest event the anchor; rows keep their line numbers."""
        last = self.tail[-1]
        assert last.id is not None
        self.older_count += len(self.tail)
        self.anchor_id = last.id
        self.tail = []
        self._pages.clear()
        self._cursors = {0: last.id + 1}

    def row(self, line: int) -> EventRow | None:
        """The event on ``line``, or None when its page is not fetched yet."""
        if line < 0 or line >= self.total:
            return None
        if line >= self.older_count:
            return self.tail[line - self.older_count]
        back = self.older_count - 1 - line
        page = self._pages.get(back // PAGE)
        if page is None:
            return None
        self._pages.move_to_end(back // PAGE)
        index = back % PAGE
        return page[index] if index < len(page) else None

    def pages_for(self, first_line: int, last_line: int) -> list[int]:
        """The pages lines first..last need that are not held."""
        needed = []
        for line in (first_line, last_line):
            if 0 <= line < self.older_count:
                page = (self.older_count - 1 - line) // PAGE
                if page not in self._pages and page not in needed:
                    needed.append(page)
        return sorted(needed)

    async def fetch(self, page: int, call: Fetch) -> None:
        """Fetch ``page``, walking from the nearest known cursor below it."""
        generation = self.generation
        start = max((p for p in self._cursors if p <= page), default=0)
        for current in range(start, page + 1):
            if current in self._pages and current != page:
                continue
            before = self._cursors.get(current)
            if before is None:
                return
            result = await call(filter=self.filter, before_id=before, limit=PAGE)
            if generation != self.generation:
                return  # the filter changed meanwhile
            rows = [EventRow.from_json(e) for e in result["events"]]
            self._store_page(current, rows)
            if len(rows) < PAGE:
                # The oldest end (or rows pruned meanwhile): the count was high.
                self.older_count = min(self.older_count, current * PAGE + len(rows))
                return

    def _store_page(self, page: int, rows: list[EventRow]) -> None:
        self._pages[page] = rows
        self._pages.move_to_end(page)
        if rows and rows[-1].id is not None:
            self._cursors[page + 1] = rows[-1].id
        while len(self._pages) > KEEP_PAGES:
            self._pages.popitem(last=False)
