"""``open_store``: one call gives a migrated store, ready to use.

    store = await open_store(settings.store)
    store.register_secret(settings.closte.api_key)
    await store.ledger.mark_adding("shop.example.com")   # intent, committed
    ... call Closte ...
    await store.ledger.confirm_added("shop.example.com") # outcome, committed
    store.events.emit(event)                             # never blocks
    page = await store.event_log.page(EventFilter(min_level=Level.WARNING))
    await store.prune()                                  # now and then
    await store.aclose()

Three connections to one WAL file: ``state`` (ledger, stages, settings; synchronous=FULL,
because a ledger intent must survive power loss before the API call it announces),
``events`` (writer and retention; synchronous=NORMAL, safe against crashes and much faster)
and ``reader`` (queries, which WAL lets run beside the writers).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store.database import (
    Database,
    connect,
    facts_of,
    inspect_file,
    prepare_path,
)
from closte_sync.daemon.store.errors import StoreError
from closte_sync.daemon.store.event_log import EventLog
from closte_sync.daemon.store.event_writer import EventWriter
from closte_sync.daemon.store.ledger import Ledger
from closte_sync.daemon.store.migrations import check_compatible, migrate
from closte_sync.daemon.store.retention import (
    DEFAULT_CHUNK,
    PruneResult,
    prune_checks_by_age,
    prune_checks_by_count,
    prune_events_by_age,
    prune_events_by_count,
)
from closte_sync.daemon.store.scrubber import Scrubber
from closte_sync.daemon.store.settings_table import SettingsTable
from closte_sync.daemon.store.stages import Stages
from closte_sync.shared.secret import Secret

DAY_S = 86_400.0


@dataclass(frozen=True)
class StoreOptions:
    """Tuning that is not part of the config file; the defaults suit the daemon."""

    busy_timeout_ms: int = 5000
    batch_size: int = 500
    batch_interval_s: float = 0.2
    queue_limit: int = 10_000
    close_timeout_s: float = 10.0


class Store:
    def __init__(
        self,
        settings: StoreSettings,
        options: StoreOptions,
        state: Database,
        events: Database,
        reader: Database,
    ) -> None:
        self.path = settings.path
        self._settings = settings
        self._options = options
        self._state = state
        self._events_db = events
        self._reader = reader
        self._scrubber = Scrubber()
        self.ledger = Ledger(state, self._scrubber)
        self.stages = Stages(state, self._scrubber)
        self.settings = SettingsTable(state, self._scrubber)
        self.events = EventWriter(
            events,
            self._scrubber,
            queue_limit=options.queue_limit,
            batch_size=options.batch_size,
            batch_interval_s=options.batch_interval_s,
        )
        self.event_log = EventLog(reader)
        self._closed = False

    def register_secret(self, secret: Secret | None) -> None:
        """Mask this secret's value wherever it turns up in what the store writes."""
        if secret is not None:
            self._scrubber.register(secret)

    async def prune(self, *, now: float | None = None, chunk: int = DEFAULT_CHUNK) -> PruneResult:
        """Apply retention_days, max_events and max_checks; returns how many rows went."""
        at = time.time() if now is None else now
        cutoff = at - self._settings.retention_days * DAY_S
        by_age = await prune_events_by_age(self._events_db, cutoff, chunk)
        by_count = await prune_events_by_count(self._events_db, self._settings.max_events, chunk)
        checks = await prune_checks_by_age(self._state, cutoff, chunk)
        checks_by_count = await prune_checks_by_count(self._state, self._settings.max_checks, chunk)
        return PruneResult(
            events_by_age=by_age,
            events_by_count=by_count,
            checks_by_age=checks,
            checks_by_count=checks_by_count,
        )

    async def schema_version(self) -> int:
        row = await self._reader.fetch_one("reading the schema version", "PRAGMA user_version")
        return int(row[0]) if row else 0

    async def aclose(self) -> None:
        """Write the queued events, then close every connection."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.events.aclose(self._options.close_timeout_s)
        finally:
            for db in (self._reader, self._events_db, self._state):
                await db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _open_existing_or_new(path: Path) -> None:
    """Refuse an incompatible file before anything (even a chmod) touches it."""
    if await asyncio.to_thread(path.exists):
        check_compatible(path, await inspect_file(path))
    try:
        await asyncio.to_thread(prepare_path, path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store: {exc.strerror or exc}") from None


async def open_store(settings: StoreSettings, options: StoreOptions | None = None) -> Store:
    """Open (creating when missing) and migrate the store at ``settings.path``."""
    opts = options or StoreOptions()
    path = settings.path
    await _open_existing_or_new(path)
    opened: list[Database] = []
    # One writer at a time in this process, in turn (see Database).
    write_lock = asyncio.Lock()
    try:
        state = await connect(
            path, busy_timeout_ms=opts.busy_timeout_ms, synchronous="FULL", write_lock=write_lock
        )
        opened.append(state)
        # Check again under our own connection: another process may have migrated meanwhile.
        async with state.reading("reading the schema version") as conn:
            check_compatible(path, await facts_of(conn))
        await migrate(state)
        for _ in range(2):
            opened.append(
                await connect(
                    path,
                    busy_timeout_ms=opts.busy_timeout_ms,
                    synchronous="NORMAL",
                    write_lock=write_lock,
                )
            )
    except BaseException:
        for db in opened:
            await db.close()
        raise
    store = Store(settings, opts, state, opened[1], opened[2])
    store.events.start()
    return store
