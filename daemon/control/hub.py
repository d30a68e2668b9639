"""``ControlHub``: the daemon's one EventSink. Every event goes to the store's writer and to
the socket's subscribers; domain changes go to the subscribers only.

Both calls return at once: a listener only queues (bounded) and wakes its own writer
task, and a listener that raises is forgotten rather than allowed to break the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from closte_sync.daemon.events import Event, EventSink, room_in

log = logging.getLogger(__name__)


class HubListener(Protocol):
    def on_event(self, event: Event) -> None: ...

    def on_domain(self, domain: str) -> None: ...


class ControlHub:
    def __init__(self, inner: EventSink) -> None:
        self._inner = inner
        self._listeners: set[HubListener] = set()

    def emit(self, event: Event) -> None:
        """Forward to the store's writer, then to every listener; never blocks."""
        self._inner.emit(event)
        for listener in list(self._listeners):
            try:
                listener.on_event(event)
            except Exception:  # a listener's bug must not reach the daemon
                log.exception("control: a subscriber failed on an event; dropping it")
                self._listeners.discard(listener)

    def domain_changed(self, domain: str) -> None:
        """The daemon calls this after it changed a domain's ledger row or stage."""
        for listener in list(self._listeners):
            try:
                listener.on_domain(domain)
            except Exception:
                log.exception("control: a subscriber failed on a domain change; dropping it")
                self._listeners.discard(listener)

    async def room(self, count: int) -> None:
        """Before a burst of ``count`` events: the store's writer and every subscriber that
        is still taking pushes make room for it (each waits a few seconds at most, so a
        subscriber that really falls behind is still dropped)."""
        await room_in(self._inner, count)
        await asyncio.gather(*(room_in(listener, count) for listener in list(self._listeners)))

    def add(self, listener: HubListener) -> None:
        self._listeners.add(listener)

    def remove(self, listener: HubListener) -> None:
        self._listeners.discard(listener)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)
