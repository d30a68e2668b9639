"""Watch one source for as long as the daemon runs, restarting a watch that dies.

A watch can die for reasons of its own (the domains file's folder unreadable, inotify
watches exhausted, a bug). The moment it does, the source counts as unhealthy (its last good
domains stand, and none of them is removed), the reason is reported, and the watch starts
again after a backoff that grows with each failure in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from closte_sync.daemon.sources.base import Source, SourceProblem, SourceSnapshot


class SourceSupervisor:
    def __init__(
        self,
        source: Source,
        on_snapshot: Callable[[SourceSnapshot], Awaitable[None]],
        on_failure: Callable[[SourceSnapshot, str], Awaitable[None]],
        *,
        last: Callable[[], SourceSnapshot | None],
        base_s: float = 1.0,
        max_s: float = 60.0,
    ) -> None:
        self.source = source
        self._on_snapshot = on_snapshot
        self._on_failure = on_failure
        self._last = last
        self._base_s = base_s
        self._max_s = max_s
        self.restarts = 0

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                async for snapshot in self.source.watch():
                    failures = 0
                    await self._on_snapshot(snapshot)
                if stop.is_set():
                    return
                raise RuntimeError("its watch ended by itself")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.restarts += 1
                reason = f"the watch of {self.source.name} stopped: {exc!r}; restarting it"
                await self._on_failure(self._unhealthy(reason), reason)
                delay = min(self._max_s, self._base_s * 2 ** (failures - 1))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()

    def _unhealthy(self, reason: str) -> SourceSnapshot:
        last = self._last()
        return SourceSnapshot(
            source=self.source.name,
            domains=dict(last.domains) if last else {},
            healthy=False,
            problems=(SourceProblem(self.source.name, reason),),
            facts=dict(last.facts) if last else {},
        )
