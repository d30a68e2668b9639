"""A new leader's local ledger, brought up to date from the shared rows.

Every change the leader makes to its ledger is written to the shared table (intents before
the call, outcomes after), so a shared row is the fleet's latest word on its domain: it
replaces the local row (whose node may have stood by through many passes). Local rows the
shared table does not have (from before clustering was turned on) stay as they are; the
first pass of the new leader writes them to the shared table.

A shared intent whose outcome never made it there (the old leader died between its call
and its write) arrives as ``adding``/``removing`` with ``attempts`` > 0, and the ledger's
own rules resolve it against Closte's list: an add that landed becomes ours, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from closte_sync.daemon.store import LedgerEntry, Store


def rows_to_take(
    local: Mapping[str, LedgerEntry], shared: Mapping[str, LedgerEntry]
) -> list[LedgerEntry]:
    """The shared rows that differ from the local ones (keeping when we first saw each)."""
    taken = []
    for name, row in sorted(shared.items()):
        mine = local.get(name)
        if mine is not None:
            row = replace(row, first_seen=mine.first_seen)
        if row != mine:
            taken.append(row)
    return taken


async def write_local(store: Store, rows: Sequence[LedgerEntry]) -> None:
    """Put whole rows into the local ledger in one transaction."""
    await store.ledger.take_over(rows)
