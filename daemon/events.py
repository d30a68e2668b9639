"""Events: what the daemon tells the operator, and where it goes.

Every part reports through an ``EventSink``; the store's writer is the real one (batched,
never blocking), tests use ``MemorySink``. Event ``kind`` reuses the plugin's log handles
where one fits (``integration-closte``, ``domain-<name>``...) so admins recognise them.
Messages and details must never carry a secret: callers pass Secret objects, not values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Level(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Event:
    level: Level
    kind: str
    message: str
    domain: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Hand over an event; must return at once (no I/O on the caller's path)."""


@runtime_checkable
class BoundedSink(Protocol):
    """A sink (or a hub listener) that queues what it is handed, up to a bound, and drops
    past it: the store's writer drops its oldest events, the control socket drops a peer
    that fell behind."""

    async def room(self, count: int) -> object:
        """Wait a little (a few seconds at most) until ``count`` more fit."""


async def room_in(sink: object, count: int) -> None:
    """Before a burst of ``count`` events: let ``sink`` make room, when it is bounded."""
    if isinstance(sink, BoundedSink):
        await sink.room(count)


class NullSink:
    def emit(self, event: Event) -> None:
        pass


class MemorySink:
    """Keeps events in a list; tests wait on them with ``wait_for`` instead of sleeping."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        async def _wait() -> Event:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)


def make_event(
    level: Level, kind: str, message: str, *, domain: str | None = None, **details: Any
) -> Event:
    return Event(level=level, kind=kind, message=message, domain=domain, details=details)
