"""Retention: old events and check history go, in small chunks.

Each chunk is its own short transaction, and the writer's lock is released between chunks,
so a prune of a million rows never keeps the event writer (or anyone else) waiting long.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from closte_sync.daemon.store.database import Database

DEFAULT_CHUNK = 2000


@dataclass(frozen=True)
class PruneResult:
    events_by_age: int = 0
    events_by_count: int = 0
    checks_by_age: int = 0
    checks_by_count: int = 0

    @property
    def total(self) -> int:
        return self.events_by_age + self.events_by_count + self.checks_by_age + self.checks_by_count


async def _delete_in_chunks(
    db: Database,
    doing: str,
    table: Literal["events", "checks"],
    select_ids: str,
    bound: float,
    chunk: int,
) -> int:
    """Delete the rows whose ids ``select_ids`` gives (``?`` for ``bound``, then ``?`` for
    the chunk size), chunk by chunk, until none are left. Both SQL texts are fixed here."""
    removed = 0
    while True:
        async with db.transaction(doing) as conn:
            cursor = await conn.execute(
                f"DELETE FROM {table} WHERE id IN ({select_ids})", (bound, chunk)
            )
            count = cursor.rowcount
        removed += max(count, 0)
        if count < chunk:
            return removed
        await asyncio.sleep(0)  # let queued writers take the lock between chunks


async def prune_events_by_age(db: Database, cutoff: float, chunk: int = DEFAULT_CHUNK) -> int:
    return await _delete_in_chunks(
        db,
        "pruning old events",
        "events",
        "SELECT id FROM events WHERE time < ? ORDER BY time LIMIT ?",
        cutoff,
        chunk,
    )


async def prune_events_by_count(db: Database, keep: int, chunk: int = DEFAULT_CHUNK) -> int:
    return await _prune_by_count(db, "events", keep, chunk)


async def _prune_by_count(
    db: Database, table: Literal["events", "checks"], keep: int, chunk: int
) -> int:
    """Delete all but the newest ``keep`` rows of ``table`` (ids grow with time)."""
    row = await db.fetch_one(
        f"counting {table}",
        f"SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?",
        (max(keep, 0),),
    )
    if row is None:
        return 0  # at most `keep` rows
    newest_to_delete = int(row[0])
    return await _delete_in_chunks(
        db,
        f"pruning {table} over the row limit",
        table,
        f"SELECT id FROM {table} WHERE id <= ? ORDER BY id LIMIT ?",
        newest_to_delete,
        chunk,
    )


async def prune_checks_by_age(db: Database, cutoff: float, chunk: int = DEFAULT_CHUNK) -> int:
    return await _delete_in_chunks(
        db,
        "pruning old check history",
        "checks",
        "SELECT id FROM checks WHERE time < ? ORDER BY time LIMIT ?",
        cutoff,
        chunk,
    )


async def prune_checks_by_count(db: Database, keep: int, chunk: int = DEFAULT_CHUNK) -> int:
    return await _prune_by_count(db, "checks", keep, chunk)
