"""Reading events back, for the control socket and the TUI.

Pages are newest first with keyset paging: pass the smallest id of one page as ``before_id``
to get the next, which stays cheap however deep the operator scrolls (no OFFSET). Every
filter is a fixed SQL fragment with a bound parameter; nothing from the caller is ever
pasted into the SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from closte_sync.daemon.events import Event, Level
from closte_sync.daemon.store.database import Database
from closte_sync.daemon.store.levels import RANK, level_of_rank

MAX_PAGE = 1000
_COLUMNS = "id, time, level, kind, domain, message, details"


@dataclass(frozen=True)
class EventFilter:
    min_level: Level | None = None  # this level and above
    domain: str | None = None
    kind: str | None = None
    since: float | None = None  # time >= since
    until: float | None = None  # time < until
    text: str | None = None  # a plain substring of the message or details (no wildcards)


@dataclass(frozen=True)
class StoredEvent:
    id: int
    time: float
    level: Level
    kind: str
    domain: str | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_event(self) -> Event:
        return Event(
            level=self.level,
            kind=self.kind,
            message=self.message,
            domain=self.domain,
            details=self.details,
            time=self.time,
        )


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(flt: EventFilter, before_id: int | None, after_id: int | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.min_level is not None:
        clauses.append("level >= ?")
        params.append(RANK[Level(flt.min_level)])
    if flt.domain is not None:
        clauses.append("domain = ?")
        params.append(flt.domain)
    if flt.kind is not None:
        clauses.append("kind = ?")
        params.append(flt.kind)
    if flt.since is not None:
        clauses.append("time >= ?")
        params.append(flt.since)
    if flt.until is not None:
        clauses.append("time < ?")
        params.append(flt.until)
    if flt.text:
        clauses.append("(message LIKE ? ESCAPE '\\' OR details LIKE ? ESCAPE '\\')")
        pattern = _like_pattern(flt.text)
        params.extend([pattern, pattern])
    if before_id is not None:
        clauses.append("id < ?")
        params.append(before_id)
    if after_id is not None:
        clauses.append("id > ?")
        params.append(after_id)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _stored(row: aiosqlite.Row) -> StoredEvent:
    return StoredEvent(
        id=row["id"],
        time=row["time"],
        level=level_of_rank(row["level"]),
        kind=row["kind"],
        domain=row["domain"],
        message=row["message"],
        details=json.loads(row["details"]),
    )


def _clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


class EventLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, flt: EventFilter | None = None, *, before_id: int | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Up to ``limit`` events matching ``flt``, newest first, all older than
        ``before_id`` when given."""
        where, params = _where(flt or EventFilter(), before_id, None)
        return await self._select(
            f"SELECT {_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ?",
            [*params, _clamp(limit)],
        )

    async def after(
        self, after_id: int, flt: EventFilter | None = None, *, limit: int = 100
    ) -> list[StoredEvent]:
        """Events newer than ``after_id``, oldest first: what a live view appends."""
        where, params = _where(flt or EventFilter(), None, after_id)
        return await self._select(
            f"SELECT {_COLUMNS} FROM events{where} ORDER BY id ASC LIMIT ?",
            [*params, _clamp(limit)],
        )

    async def latest_for_domain(self, domain: str, limit: int = 20) -> list[StoredEvent]:
        return await self.page(EventFilter(domain=domain), limit=limit)

    async def count(self, flt: EventFilter | None = None) -> int:
        where, params = _where(flt or EventFilter(), None, None)
        row = await self._db.fetch_one(
            "counting events", f"SELECT count(*) FROM events{where}", params
        )
        return int(row[0]) if row else 0

    async def _select(self, query: str, params: list[Any]) -> list[StoredEvent]:
        return [_stored(row) for row in await self._db.fetch_all("reading events", query, params)]
