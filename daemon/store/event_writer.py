"""The store's EventSink: ``emit`` queues in memory, a background task writes batches.

``emit`` never does I/O, never blocks and never raises: the daemon keeps going even while
another process holds the file's write lock. The queue is bounded; when it is full the
oldest debug/info event makes room (warnings and errors go only when nothing else is left),
and the count of dropped events is written later as a warning event of its own.

A batch is written when ``batch_size`` events wait or ``batch_interval_s`` after the first
one arrived, in one transaction. A write that meets a lock (or any other operational error:
disk full, I/O) keeps its batch and retries with backoff, so nothing already queued is lost
to a transient problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from closte_sync.daemon.events import Event, Level
from closte_sync.daemon.store.database import Database
from closte_sync.daemon.store.errors import StoreBusyError, StoreError
from closte_sync.daemon.store.levels import RANK
from closte_sync.daemon.store.scrubber import Scrubber

log = logging.getLogger(__name__)

DROP_REPORT_KIND = "store"
INSERT_EVENT = (
    "INSERT INTO events (time, level, kind, domain, message, details) VALUES (?, ?, ?, ?, ?, ?)"
)

Row = tuple[float, int, str, str | None, str, str]


@dataclass
class WriterStats:
    """Counters for the TUI and for tests; read them, never write them."""

    queued: int = 0
    written: int = 0
    batches: int = 0
    dropped_low: int = 0  # debug/info dropped because the queue was full
    dropped_high: int = 0  # warning/error dropped because nothing else was left
    dropped_closed: int = 0  # emitted after aclose()
    retries: int = 0  # batch writes repeated after a lock or an operational error
    lost: int = 0  # events that could not be written at all (see the daemon's log)

    @property
    def dropped(self) -> int:
        return self.dropped_low + self.dropped_high


class EventWriter:
    def __init__(
        self,
        db: Database,
        scrubber: Scrubber,
        *,
        queue_limit: int = 10_000,
        batch_size: int = 500,
        batch_interval_s: float = 0.2,
        retry_max_s: float = 1.0,
    ) -> None:
        if queue_limit < 1 or batch_size < 1 or batch_interval_s < 0:
            raise ValueError("queue_limit and batch_size must be >= 1, batch_interval_s >= 0")
        self._db = db
        self._scrub = scrubber
        self._queue_limit = queue_limit
        self._batch_size = batch_size
        self._batch_interval_s = batch_interval_s
        self._retry_max_s = retry_max_s
        # Two queues in arrival order (seq), so dropping the oldest debug/info event is O(1).
        self._low: deque[tuple[int, Event]] = deque()
        self._high: deque[tuple[int, Event]] = deque()
        self._seq = itertools.count(1)
        self._last_seq = 0  # the newest seq handed out
        self._done_seq = 0  # every event up to this seq is written or dropped
        self._reported_drops = 0
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self._urgent = 0  # flush() callers waiting: write now, do not wait for a full batch
        self._closing = False
        self._abandon = False
        self._task: asyncio.Task[None] | None = None
        self.stats = WriterStats()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="closte-sync event writer"
            )

    # -- the caller's side: never blocks, never raises -----------------------------------

    def emit(self, event: Event) -> None:
        """Queue ``event`` and return. Call it from the event loop's thread."""
        try:
            if self._closing:
                self.stats.dropped_closed += 1
                return
            if self._queued() >= self._queue_limit:
                self._drop_one()
            seq = next(self._seq)
            self._last_seq = seq
            target = self._low if event.level in (Level.DEBUG, Level.INFO) else self._high
            target.append((seq, event))
            queued = self._queued()
            self.stats.queued = queued
            if queued == 1 or queued >= self._batch_size:
                self._wakeup.set()
        except Exception:  # pragma: no cover - emit must never raise into the caller
            self.stats.lost += 1

    async def flush(self) -> None:
        """Return once every event emitted before this call is written (or was dropped).

        While another process holds the write lock this waits with it; wrap the call in
        ``asyncio.timeout`` where waiting long is not acceptable."""
        target = self._last_seq
        if self._done_seq >= target:
            return
        if self._task is None or self._task.done():
            raise StoreError(f"{self._db.path}: the event writer is not running")
        self._urgent += 1
        self._wakeup.set()
        try:
            async with self._progress:
                await self._progress.wait_for(
                    lambda: self._done_seq >= target or self._task is None or self._task.done()
                )
        finally:
            self._urgent -= 1
        if self._done_seq < target:
            raise StoreError(f"{self._db.path}: the event writer stopped before the flush")

    async def room(self, count: int, *, timeout: float = 5.0) -> bool:
        """Wait until ``count`` more events fit in the queue without dropping any, for a
        producer of large bursts (a check round) that can afford to wait a little. Returns
        False when ``timeout`` passed first or the writer is not running: then emitting
        drops the oldest debug/info events, as ever."""
        need = min(count, self._queue_limit)

        def fits() -> bool:
            return self._queued() + need <= self._queue_limit

        if fits():
            return True
        if self._task is None or self._task.done():
            return False
        self._urgent += 1  # write now, do not wait for a full batch
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout), self._progress:
                await self._progress.wait_for(
                    lambda: fits() or self._task is None or self._task.done()
                )
        except TimeoutError:
            return False
        finally:
            self._urgent -= 1
        return fits()

    async def aclose(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop; after ``timeout`` give up on the rest (counted
        as lost) so a file locked for good cannot keep the daemon from exiting."""
        self._closing = True
        self._wakeup.set()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            self._abandon = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.stats.lost += self._queued()
            self._low.clear()
            self._high.clear()
            log.error("%s: gave up writing events on close", self._db.path)

    # -- the background task -------------------------------------------------------------

    def _queued(self) -> int:
        return len(self._low) + len(self._high)

    def _drop_one(self) -> None:
        if self._low:
            self._low.popleft()
            self.stats.dropped_low += 1
        else:
            self._high.popleft()
            self.stats.dropped_high += 1

    async def _run(self) -> None:
        while True:
            await self._wait_for_batch()
            if not self._queued():
                return  # closing, and everything is written
            batch, through = self._take_batch()
            await self._write(batch)
            self._done_seq = through
            async with self._progress:
                self._progress.notify_all()

    async def _wait_for_batch(self) -> None:
        while not self._queued():
            if self._closing:
                return
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = time.monotonic() + self._batch_interval_s
        while self._queued() < self._batch_size and not (self._urgent or self._closing):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take_batch(self) -> tuple[list[Event], int]:
        """Up to batch_size events in arrival order, and the seq everything before the
        rest of the queue goes up to (taken now, written earlier, or dropped)."""
        batch: list[Event] = []
        while len(batch) < self._batch_size and (self._low or self._high):
            if self._high and (not self._low or self._high[0][0] < self._low[0][0]):
                batch.append(self._high.popleft()[1])
            else:
                batch.append(self._low.popleft()[1])
        heads = [q[0][0] for q in (self._low, self._high) if q]
        through = min(heads) - 1 if heads else self._last_seq
        self.stats.queued = self._queued()
        return batch, through

    def _rows(self, batch: list[Event]) -> list[Row]:
        rows = [self._row(event) for event in batch]
        dropped = self.stats.dropped
        if dropped > self._reported_drops:
            newly = dropped - self._reported_drops
            self._reported_drops = dropped
            rows.append(
                (
                    time.time(),
                    RANK[Level.WARNING],
                    DROP_REPORT_KIND,
                    None,
                    f"{newly} events were dropped: the event queue was full "
                    "(the store could not keep up)",
                    self._scrub.json(
                        {
                            "dropped": newly,
                            "dropped_total": dropped,
                            "dropped_warnings_and_errors": self.stats.dropped_high,
                        }
                    ),
                )
            )
        return rows

    def _row(self, event: Event) -> Row:
        try:
            level = Level(event.level)
            details: Any = dict(event.details)
        except (ValueError, TypeError):
            level = Level.ERROR
            details = {"unreadable_details": repr(event.details)}
        return (
            float(event.time),
            RANK[level],
            self._scrub.text(str(event.kind)),
            self._scrub.optional_text(event.domain),
            self._scrub.text(str(event.message)),
            self._scrub.json(details),
        )

    async def _write(self, batch: list[Event]) -> None:
        rows = self._rows(batch)
        try:
            await self._write_rows(rows)
        except asyncio.CancelledError:  # aclose() gave up on this batch
            self.stats.lost += len(rows)
            raise

    async def _write_rows(self, rows: list[Row]) -> None:
        delay = 0.02
        while True:
            try:
                async with self._db.transaction("writing events") as conn:
                    await conn.executemany(INSERT_EVENT, rows)
            except StoreError as exc:
                if self._abandon:
                    self.stats.lost += len(rows)
                    return
                if not exc.transient:
                    self.stats.lost += len(rows)
                    log.error("%s; %d events lost", exc, len(rows))
                    return
                self.stats.retries += 1
                if self.stats.retries == 1 or not isinstance(exc, StoreBusyError):
                    log.warning("%s; will retry", exc)
                await asyncio.sleep(delay)  # backoff, not synchronisation
                delay = min(delay * 2, self._retry_max_s)
            except Exception:  # a bug here must not stop the writer for good
                self.stats.lost += len(rows)
                log.exception("%s: writing %d events failed", self._db.path, len(rows))
                return
            else:
                self.stats.written += len(rows)
                self.stats.batches += 1
                return
