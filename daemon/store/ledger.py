"""The domain ledger: what we believe Closte holds, and why.

"Durable before side effects": the reconciler records its intent here *before* it calls
Closte, and the result after. Every step commits on its own, so after a crash or ``kill -9``
at any point the ledger says exactly where to resume:

    wanted   --mark_adding-->   adding   --mark_held-->    held
    held     --mark_removing--> removing --mark_removed--> removed
    (absent) --adopt-->         adopted  (Closte listed it; we did not add it)

- ``adding``: an add was (or is about to be) sent. Resume by sending it again: Closte's
  "already added" is a success, so a repeat is harmless. ``added_by_us`` is set here, before
  the call, because once the call may have gone out the alias may be ours.
- ``removing``: a delete was (or is about to be) sent; resume by sending it again ("already
  gone" is a success). Only domains we added may be removed, unless the caller forces it.
- ``attempts`` counts calls made for the current intent; ``last_error`` keeps the newest
  failure until the intent succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiosqlite

from closte_sync.daemon.store.database import Database, fetch_one
from closte_sync.daemon.store.errors import LedgerTransitionError
from closte_sync.daemon.store.scrubber import Scrubber
from closte_sync.shared.domains import is_wildcard, normalize_domain

MAX_ERROR_LENGTH = 2000


class DomainState(StrEnum):
    WANTED = "wanted"  # a source wants it; nothing sent yet
    ADDING = "adding"  # add sent or about to be sent
    HELD = "held"  # Closte holds it and we want it
    REMOVING = "removing"  # delete sent or about to be sent
    REMOVED = "removed"  # gone from Closte (kept as history)
    ADOPTED = "adopted"  # Closte holds it, we did not add it


class DomainOrigin(StrEnum):
    DATABASE = "database"  # a row in wu_domain_mappings
    FILE = "file"  # the domains file
    SITE = "site"  # a site of a subdomain install
    ADOPTED = "adopted"  # listed by Closte's /getdomains


@dataclass(frozen=True)
class LedgerEntry:
    domain: str
    wildcard: bool
    state: DomainState
    origin: DomainOrigin
    added_by_us: bool
    place: str
    first_seen: float
    last_change: float
    last_error: str | None
    attempts: int

    @property
    def unfinished(self) -> bool:
        """An API call may have been cut short here; the next run must repeat it."""
        return self.state in (DomainState.ADDING, DomainState.REMOVING)


_S = DomainState
# Where each step may start from (the step's own state: repeating it is allowed).
_MAY_ADD = frozenset({_S.WANTED, _S.ADDING, _S.REMOVING, _S.REMOVED})
_MAY_HOLD = frozenset({_S.WANTED, _S.ADDING, _S.HELD, _S.ADOPTED, _S.REMOVING})
_MAY_REMOVE = frozenset({_S.HELD, _S.ADOPTED, _S.ADDING, _S.REMOVING})
_MAY_FORGET = frozenset({_S.WANTED, _S.REMOVING, _S.REMOVED})
_MAY_GO_MISSING = frozenset({_S.HELD, _S.ADOPTED, _S.REMOVING, _S.REMOVED})

_COLUMNS = (
    "domain, wildcard, state, origin, added_by_us, place, first_seen, last_change, "
    "last_error, attempts"
)


def _entry(row: aiosqlite.Row) -> LedgerEntry:
    return LedgerEntry(
        domain=row["domain"],
        wildcard=bool(row["wildcard"]),
        state=DomainState(row["state"]),
        origin=DomainOrigin(row["origin"]),
        added_by_us=bool(row["added_by_us"]),
        place=row["place"],
        first_seen=row["first_seen"],
        last_change=row["last_change"],
        last_error=row["last_error"],
        attempts=row["attempts"],
    )


async def _fetch(conn: aiosqlite.Connection, domain: str) -> LedgerEntry | None:
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM domains WHERE domain = ?", (domain,))
    return _entry(row) if row is not None else None


class Ledger:
    def __init__(self, db: Database, scrubber: Scrubber) -> None:
        self._db = db
        self._scrub = scrubber

    # -- reads ---------------------------------------------------------------------------

    async def get(self, domain: str) -> LedgerEntry | None:
        name = normalize_domain(domain)
        async with self._db.reading(f"reading the ledger for {name}") as conn:
            return await _fetch(conn, name)

    async def entries(self, states: Iterable[DomainState] | None = None) -> list[LedgerEntry]:
        """All rows (or those in ``states``), by domain name."""
        query = f"SELECT {_COLUMNS} FROM domains"
        params: list[Any] = []
        if states is not None:
            wanted = [DomainState(s).value for s in states]
            if not wanted:
                return []
            query += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        query += " ORDER BY domain"
        return [
            _entry(row) for row in await self._db.fetch_all("reading the ledger", query, params)
        ]

    async def unfinished(self) -> list[LedgerEntry]:
        """Domains whose last API call may not have completed: resume these first."""
        return await self.entries([DomainState.ADDING, DomainState.REMOVING])

    # -- what the sources and Closte say -------------------------------------------------

    async def want(
        self, domain: str, origin: DomainOrigin | str, *, place: str = "", now: float | None = None
    ) -> LedgerEntry:
        """A source wants ``domain``: new or removed rows become 'wanted'; others keep their
        state and take the new origin and place."""
        name = normalize_domain(domain)
        source = DomainOrigin(origin)
        where = self._scrub.text(place)
        at = time.time() if now is None else now
        async with self._db.transaction(f"recording that {name} is wanted") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                await conn.execute(
                    "INSERT INTO domains (domain, wildcard, state, origin, place, first_seen, "
                    "last_change) VALUES (?, ?, 'wanted', ?, ?, ?, ?)",
                    (name, int(is_wildcard(name)), source.value, where, at, at),
                )
            elif entry.state is DomainState.REMOVED:
                await conn.execute(
                    "UPDATE domains SET state = 'wanted', origin = ?, place = ?, attempts = 0, "
                    "last_error = NULL, last_change = ? WHERE domain = ?",
                    (source.value, where, at, name),
                )
            elif entry.origin != source or entry.place != where:
                await conn.execute(
                    "UPDATE domains SET origin = ?, place = ?, last_change = ? WHERE domain = ?",
                    (source.value, where, at, name),
                )
            result = await _fetch(conn, name)
        assert result is not None
        return result

    async def adopt(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte lists ``domain``. Unknown or removed: 'adopted' (not ours to delete).
        'adding': the add landed, now 'held'. 'wanted': already there, 'held', not ours."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"adopting {name}") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                await conn.execute(
                    "INSERT INTO domains (domain, wildcard, state, origin, first_seen, "
                    "last_change) VALUES (?, ?, 'adopted', 'adopted', ?, ?)",
                    (name, int(is_wildcard(name)), at, at),
                )
            elif entry.state is DomainState.REMOVED:
                await conn.execute(
                    "UPDATE domains SET state = 'adopted', origin = 'adopted', added_by_us = 0, "
                    "attempts = 0, last_error = NULL, last_change = ? WHERE domain = ?",
                    (at, name),
                )
            elif entry.state in (DomainState.ADDING, DomainState.WANTED):
                await conn.execute(
                    "UPDATE domains SET state = 'held', attempts = 0, last_error = NULL, "
                    "last_change = ? WHERE domain = ?",
                    (at, name),
                )
            result = await _fetch(conn, name)
        assert result is not None
        return result

    # -- intent before the API call, outcome after ---------------------------------------

    async def mark_adding(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Call *before* sending the add. Counts the attempt."""
        return await self._move(
            domain,
            DomainState.ADDING,
            _MAY_ADD,
            "attempts = CASE WHEN state = 'adding' THEN attempts + 1 ELSE 1 END, added_by_us = 1",
            now=now,
        )

    async def mark_held(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte confirmed it holds ``domain`` (add succeeded, or already there)."""
        return await self._move(
            domain, DomainState.HELD, _MAY_HOLD, "attempts = 0, last_error = NULL", now=now
        )

    async def mark_removing(
        self, domain: str, *, force: bool = False, now: float | None = None
    ) -> LedgerEntry:
        """Call *before* sending the delete. Refuses a domain we did not add unless
        ``force`` (an operator's explicit choice)."""
        return await self._move(
            domain,
            DomainState.REMOVING,
            _MAY_REMOVE,
            "attempts = CASE WHEN state = 'removing' THEN attempts + 1 ELSE 1 END",
            now=now,
            require_ours=not force,
        )

    async def mark_removed(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte no longer holds it (delete succeeded, or it was never sent)."""
        return await self._move(
            domain, DomainState.REMOVED, _MAY_FORGET, "attempts = 0, last_error = NULL", now=now
        )

    async def record_failure(
        self, domain: str, error: str, *, now: float | None = None
    ) -> LedgerEntry:
        """An API call failed; the state stays, so the next run tries again."""
        name = normalize_domain(domain)
        text = self._scrub.text(error)[:MAX_ERROR_LENGTH]
        at = time.time() if now is None else now
        async with self._db.transaction(f"recording a failure for {name}") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                raise LedgerTransitionError(name, None, "failure", "record it with want() first")
            await conn.execute(
                "UPDATE domains SET last_error = ?, last_change = ? WHERE domain = ?",
                (text, at, name),
            )
            result = await _fetch(conn, name)
        assert result is not None
        return result

    async def mark_missing(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte's own list no longer has ``domain`` though we believed it held (removed in
        the dashboard, or a delete that landed before a crash): 'removed', so a source that
        still wants it adds it again. An 'adding' row stays as it is: its add did not land."""
        return await self._move(
            domain, DomainState.REMOVED, _MAY_GO_MISSING, "attempts = 0", now=now
        )

    async def _move(
        self,
        domain: str,
        to: DomainState,
        allowed_from: frozenset[DomainState],
        extra_sets: str,
        *,
        now: float | None,
        require_ours: bool = False,
    ) -> LedgerEntry:
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"marking {name} {to.value}") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                raise LedgerTransitionError(name, None, to.value, "record it with want() first")
            if entry.state not in allowed_from:
                raise LedgerTransitionError(name, entry.state.value, to.value)
            if require_ours and not entry.added_by_us:
                raise LedgerTransitionError(
                    name,
                    entry.state.value,
                    to.value,
                    f"closte-sync did not add it (origin {entry.origin.value}); "
                    "only an explicit forced removal may delete it",
                )
            # extra_sets is one of the fixed strings above, never built from input.
            await conn.execute(
                f"UPDATE domains SET {extra_sets}, state = ?, last_change = ? WHERE domain = ?",
                (to.value, at, name),
            )
            result = await _fetch(conn, name)
        assert result is not None
        return result
