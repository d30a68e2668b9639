"""Events on stderr, one line each, with journald's priority prefixes (``<3>`` error,
``<4>`` warning, ``<6>`` info, ``<7>`` debug): under systemd the journal files each line
at its level; in a terminal the prefix still says how bad it is."""

from __future__ import annotations

import sys
from typing import TextIO

from closte_sync.daemon.events import Event, EventSink, Level, room_in
from closte_sync.daemon.store.scrubber import Scrubber
from closte_sync.shared.secret import Secret

_PRIORITY = {Level.ERROR: 3, Level.WARNING: 4, Level.INFO: 6, Level.DEBUG: 7}
_RANK = {Level.DEBUG: 0, Level.INFO: 1, Level.WARNING: 2, Level.ERROR: 3}


class ConsoleSink:
    def __init__(self, stream: TextIO | None = None, *, min_level: Level = Level.INFO) -> None:
        self._stream = stream
        self._min = _RANK[min_level]
        self._scrub = Scrubber()

    def register_secret(self, secret: Secret | None) -> None:
        if secret is not None:
            self._scrub.register(secret)

    def emit(self, event: Event) -> None:
        if _RANK[event.level] < self._min:
            return
        text = " ".join(self._scrub.text(event.message).split())
        stream = self._stream or sys.stderr
        try:
            stream.write(f"<{_PRIORITY[event.level]}>{event.kind}: {text}\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not stop the daemon


class TeeSink:
    """Hands each event to several sinks."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    async def room(self, count: int) -> None:
        for sink in self.sinks:
            await room_in(sink, count)
