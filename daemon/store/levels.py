"""Event levels as integer ranks, so "level >= warning" is an index range in SQL."""

from __future__ import annotations

from closte_sync.daemon.events import Level

RANK: dict[Level, int] = {Level.DEBUG: 10, Level.INFO: 20, Level.WARNING: 30, Level.ERROR: 40}
LEVEL_OF_RANK: dict[int, Level] = {rank: level for level, rank in RANK.items()}


def level_of_rank(rank: int) -> Level:
    """The level for a stored rank; an unknown rank reads as the nearest lower level."""
    known = [r for r in sorted(LEVEL_OF_RANK) if r <= rank]
    return LEVEL_OF_RANK[known[-1]] if known else Level.DEBUG
