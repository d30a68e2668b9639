"""A plan: what must change on Closte to make it hold the desired set, and whether it is safe.

Computed, never applied here: the reconciler applies plans. As in octoDNS, a plan that would
remove a large share of what is held is refused unless the operator releases it, because a
source that failed or shrank by accident must not empty the account. Only domains this
daemon added (``owned``) are ever candidates for removal.

A held plan has an id: a digest of exactly the removals it would make (octoDNS's
``--checksum``). Releasing that id lets those removals, and no other, go ahead: a different
or larger removal gets a new id and is held again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Set
from dataclasses import dataclass

from closte_sync.daemon.settings import GuardSettings

PLAN_ID_LENGTH = 12


def plan_id(removals: Collection[str]) -> str:
    """The id of a set of removals: the same set always gets the same id."""
    digest = hashlib.sha256("\n".join(sorted(removals)).encode()).hexdigest()
    return digest[:PLAN_ID_LENGTH]


@dataclass(frozen=True)
class HeldRemovals:
    """Removals the guard refused: what they are, why, and the id that releases them."""

    id: str
    domains: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Plan:
    add: tuple[str, ...]
    remove: tuple[str, ...]
    keep: tuple[str, ...]
    held: HeldRemovals | None = None  # set when the guard refused the removals

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove

    @property
    def refused_removals(self) -> str | None:
        return self.held.reason if self.held is not None else None


def make_plan(
    desired: Collection[str],
    held: Collection[str],
    owned: Set[str],
    guard: GuardSettings,
    *,
    force: bool = False,
    release: str | None = None,
) -> Plan:
    """Compare the desired names with those Closte holds; ``owned`` limits removals.

    ``force`` lets any removal through; ``release`` only the removals whose plan id it is.
    """
    desired_set, held_set = set(desired), set(held)
    add = tuple(sorted(desired_set - held_set))
    remove = tuple(sorted((held_set - desired_set) & owned))
    keep = tuple(sorted(desired_set & held_set))
    refusal = None if force else _guard_removals(len(remove), len(held_set), guard)
    if refusal is None:
        return Plan(add=add, remove=remove, keep=keep)
    held_id = plan_id(remove)
    if release is not None and release == held_id:
        return Plan(add=add, remove=remove, keep=keep)
    reason = f"{refusal}; release exactly these removals with plan id {held_id}"
    return Plan(add=add, remove=(), keep=keep, held=HeldRemovals(held_id, remove, reason))


def _guard_removals(removing: int, held: int, guard: GuardSettings) -> str | None:
    if removing == 0 or held < guard.min_held:
        return None
    share = removing / held
    if share <= guard.max_remove_share:
        return None
    return (
        f"would remove {removing} of {held} held domains ({share:.0%}), more than the"
        f" guard allows ({guard.max_remove_share:.0%}); check the sources"
    )
