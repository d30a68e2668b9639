"""A source whose watch dies is unhealthy at once, keeps its domains, and is restarted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from closte_sync.daemon.service.supervisor import SourceSupervisor
from closte_sync.daemon.sources.base import DesiredDomain, SourceSnapshot


class FlakySource:
    """A source whose watch gives one snapshot, then fails the way inotify can."""

    name = "domains-file"

    def __init__(self, deaths: int) -> None:
        self.deaths = deaths
        self.watches = 0

    async def read(self) -> SourceSnapshot:
        return SourceSnapshot(self.name, {"a.com": DesiredDomain("a.com", "file")})

    async def watch(self) -> AsyncIterator[SourceSnapshot]:
        self.watches += 1
        yield await self.read()
        if self.watches <= self.deaths:
            raise OSError(28, "inotify watch limit reached")
        await asyncio.Event().wait()  # healthy from now on: watches forever

    async def aclose(self) -> None:
        pass


async def test_a_dying_watch_makes_the_source_unhealthy_and_is_restarted() -> None:
    source = FlakySource(deaths=2)
    seen: list[SourceSnapshot] = []
    failures: list[tuple[SourceSnapshot, str]] = []
    third_watch = asyncio.Event()

    async def on_snapshot(snapshot: SourceSnapshot) -> None:
        seen.append(snapshot)
        if source.watches == 3:
            third_watch.set()

    async def on_failure(snapshot: SourceSnapshot, reason: str) -> None:
        failures.append((snapshot, reason))

    stop = asyncio.Event()
    supervisor = SourceSupervisor(
        source,
        on_snapshot,
        on_failure,
        last=lambda: seen[-1] if seen else None,
        base_s=0.001,
        max_s=0.01,
    )
    task = asyncio.create_task(supervisor.run(stop))
    await asyncio.wait_for(third_watch.wait(), 5)
    stop.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert supervisor.restarts == 2 and len(failures) == 2
    unhealthy, reason = failures[0]
    assert not unhealthy.healthy and set(unhealthy.domains) == {"a.com"}  # last good set kept
    assert "inotify watch limit reached" in reason and "restarting" in reason
    assert "inotify" in unhealthy.problems[0].message
