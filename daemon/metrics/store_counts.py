"""Domain counts from the store, read on a read-only connection of their own.

The store's own connections serve the reconciler, the stage runner and the socket; a
scrape must not queue behind them, nor they behind a scrape. SQLite's WAL lets this reader
run beside the writer. One grouped query walks the ledger's state index and the stages
table: a few milliseconds for 10,000 domains, in aiosqlite's thread, never on the loop.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import aiosqlite

from closte_sync.daemon.store import DomainState, Stage

# What Closte holds, as the ledger saw it at the last look (as LedgerEntry.on_closte).
_ON_CLOSTE = frozenset({DomainState.HELD, DomainState.ADOPTED, DomainState.REMOVING})

# One statement, so both counts come from one snapshot of the file. The state index covers
# the first half; the stages table has a row only for a desired domain Closte holds (the
# engine keeps it so after every pass), so it is counted as it stands, without a join.
_COUNTS = (
    "SELECT 'state', state, sum(added_by_us), count(*) FROM domains GROUP BY state"
    " UNION ALL SELECT 'stage', stage, 0, count(*) FROM stages GROUP BY stage"
)


@dataclass(frozen=True)
class StoreCounts:
    by_state: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in DomainState})
    by_stage: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in Stage})
    held: int = 0  # Closte holds them (ours or not)
    owned: int = 0  # ... and closte-sync added them: the only ones it may remove


class StoreCountReader:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: aiosqlite.Connection | None = None

    async def __aenter__(self) -> StoreCountReader:
        uri = f"file:{quote(str(self._path.resolve()))}?mode=ro"
        try:
            self._conn = await aiosqlite.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise RuntimeError(f"{self._path}: opening the store to count domains: {exc}") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def read(self) -> StoreCounts:
        conn = self._conn
        if conn is None:
            raise RuntimeError("StoreCountReader used outside its context")
        counts = StoreCounts()
        held = owned = 0
        try:
            rows = await conn.execute_fetchall(_COUNTS, ())
        except sqlite3.Error as exc:
            raise RuntimeError(f"{self._path}: reading domain counts: {exc}") from None
        for what, name, ours, count in rows:
            if what == "stage":
                counts.by_stage[str(name)] = count
                continue
            counts.by_state[str(name)] = count
            if name in _ON_CLOSTE:
                held += count
                owned += ours
        return StoreCounts(counts.by_state, counts.by_stage, held=held, owned=owned)
