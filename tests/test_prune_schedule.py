"""The daemon prunes hourly, and sooner after a burst of a tenth of max_events."""

from __future__ import annotations

from closte_sync.daemon.service.prune_schedule import PruneSchedule


def test_the_first_look_prunes_then_the_hour_or_a_burst_does() -> None:
    schedule = PruneSchedule(max_events=10_000, every_s=3600)
    assert schedule.due(now=0, written=0)  # at start: what an earlier run left
    schedule.pruned(now=0, written=0)

    assert not schedule.due(now=60, written=999)  # quiet: wait for the hour
    assert schedule.due(now=60, written=1000)  # a tenth of max_events since the last prune
    schedule.pruned(now=60, written=1000)
    assert not schedule.due(now=120, written=1999)
    assert schedule.due(now=3660, written=1000)  # an hour after the last prune


def test_a_tiny_limit_still_needs_one_new_event() -> None:
    schedule = PruneSchedule(max_events=3, every_s=3600)
    schedule.pruned(now=0, written=5)
    assert not schedule.due(now=1, written=5)
    assert schedule.due(now=1, written=6)
