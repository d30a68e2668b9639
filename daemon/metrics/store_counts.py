"""Domain counts from the store, read on a read-only connection of their own.

The store's own connections serve the reconciler, the stage runner and the socket; a
scrape must not queue behind them, nor they behind a scrape. SQLite's WAL lets this reader
run beside the writer. Two grouped queries walk the ledger's state index and the stages
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

_BY_STATE = "SELECT state, added_by_us, count(*) FROM domains GROUP BY state, added_by_us"
# As the control socket's status counts them: a removed domain's stage is history.
_BY_STAGE = (
    "SELECT s.stage, count(*) FROM stages AS s JOIN domains AS d ON d.domain = s.domain"
    " WHERE d.state != 'removed' GROUP BY s.stage"
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
        """Both counts from one read transaction, so they agree with each other."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("StoreCountReader used outside its context")
        counts = StoreCounts()
        held = owned = 0
        try:
            await conn.execute("BEGIN")
            try:
                for state, ours, count in await conn.execute_fetchall(_BY_STATE, ()):
                    counts.by_state[str(state)] = counts.by_state.get(str(state), 0) + count
                    if state in _ON_CLOSTE:
                        held += count
                        owned += count if ours else 0
                for stage, count in await conn.execute_fetchall(_BY_STAGE, ()):
                    counts.by_stage[str(stage)] = count
            finally:
                await conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise RuntimeError(f"{self._path}: reading domain counts: {exc}") from None
        return StoreCounts(counts.by_state, counts.by_stage, held=held, owned=owned)
