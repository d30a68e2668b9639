"""A plan: what must change on Closte to make it hold the desired set, and whether it is safe.

Computed, never applied here: the reconciler applies plans. As in octoDNS, a plan that would
remove a large share of what is held is refused unless the operator forces it, because a
source that failed or shrank by accident must not empty the account. Only domains this
daemon added (``owned``) are ever candidates for removal.
"""

from __future__ import annotations

from collections.abc import Collection, Set
from dataclasses import dataclass

from closte_sync.daemon.settings import GuardSettings


@dataclass(frozen=True)
class Plan:
    add: tuple[str, ...]
    remove: tuple[str, ...]
    keep: tuple[str, ...]
    # Why removals are held back, when they are; None when the plan is safe to apply.
    refused_removals: str | None = None

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


class UnsafePlanError(Exception):
    pass


def make_plan(
    desired: Collection[str],
    held: Collection[str],
    owned: Set[str],
    guard: GuardSettings,
    *,
    force: bool = False,
) -> Plan:
    """Compare the desired names with those Closte holds; ``owned`` limits removals."""
    desired_set, held_set = set(desired), set(held)
    add = tuple(sorted(desired_set - held_set))
    remove = tuple(sorted((held_set - desired_set) & owned))
    keep = tuple(sorted(desired_set & held_set))
    refusal = None if force else _guard_removals(len(remove), len(held_set), guard)
    if refusal is not None:
        return Plan(add=add, remove=(), keep=keep, refused_removals=refusal)
    return Plan(add=add, remove=remove, keep=keep)


def _guard_removals(removing: int, held: int, guard: GuardSettings) -> str | None:
    if removing == 0 or held < guard.min_held:
        return None
    share = removing / held
    if share <= guard.max_remove_share:
        return None
    return (
        f"would remove {removing} of {held} held domains ({share:.0%}), more than the"
        f" guard allows ({guard.max_remove_share:.0%}); check the sources, or force it"
    )
