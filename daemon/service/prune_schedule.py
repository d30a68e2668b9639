"""When the daemon prunes old events: every hour, and sooner once the writer has written a
tenth of ``max_events`` since the last prune, so a burst (a first round over 10,000 domains
writes 30,000 events) cannot carry the store far past its limit before the hour is up."""

from __future__ import annotations

from dataclasses import dataclass, field

PRUNE_EVERY_S = 3600.0
LOOK_EVERY_S = 60.0  # how often the count is looked at (no I/O: a counter)
SHARE_OF_LIMIT = 0.1


@dataclass
class PruneSchedule:
    max_events: int
    every_s: float = PRUNE_EVERY_S
    _last_at: float | None = field(default=None, init=False)
    _written_then: int = field(default=0, init=False)

    def due(self, now: float, written: int) -> bool:
        """``written``: the event writer's count of events written so far."""
        if self._last_at is None or now - self._last_at >= self.every_s:
            return True
        return written - self._written_then >= max(1, int(self.max_events * SHARE_OF_LIMIT))

    def pruned(self, now: float, written: int) -> None:
        self._last_at, self._written_then = now, written
