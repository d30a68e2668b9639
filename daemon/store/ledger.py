"""The domain ledger: what we believe Closte holds, and why.

"Durable before side effects": the reconciler records its intent here *before* it calls
Closte, and the result after. Every step commits on its own, so after a crash or ``kill -9``
at any point the ledger says exactly where to resume:

    wanted   --mark_adding-->   adding   --confirm_added-->  held (ours)
                                adding   --mark_refused-->   refused (final until retry)
                                adding   --defer-->          wanted (retry_at: backoff)
    held     --mark_removing--> removing --mark_removed-->   removed
    (absent) --settle-->        adopted  (Closte listed it; we did not add it)

- A domain counts as ours (``added_by_us``) only once Closte accepted our add, or once
  Closte lists a domain we had sent an add for (``attempts`` > 0: a crash or a time-out hid
  the answer). A refused add never makes it ours.
- ``settle`` applies a whole pass's news in one transaction: what the sources want, and what
  Closte's own list says it holds. It writes only rows that change, so a steady pass with
  thousands of domains costs one read and no writes.
- ``attempts`` counts calls made for the current intent that may have reached Closte. An
  answer that shows an add was not made (a refusal, a 429 or 4xx on the only try) sets it
  back to 0, so an alias someone else puts there later is not taken for ours.
- ``failures`` counts transient failures in a row, and ``retry_at`` holds the domain back
  until then (per-domain backoff).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import aiosqlite

from closte_sync.daemon.store.database import Database, fetch_one
from closte_sync.daemon.store.errors import LedgerTransitionError
from closte_sync.daemon.store.scrubber import Scrubber
from closte_sync.shared.domains import is_wildcard, normalize_domain

MAX_ERROR_LENGTH = 2000


class DomainState(StrEnum):
    WANTED = "wanted"  # a source wants it; Closte does not hold it (yet)
    ADDING = "adding"  # add sent or about to be sent
    HELD = "held"  # Closte holds it and a source wants it (or it is ours)
    REMOVING = "removing"  # delete sent or about to be sent
    REMOVED = "removed"  # gone from Closte, and no source wants it (kept as history)
    ADOPTED = "adopted"  # Closte holds it, we did not add it, no source wants it
    REFUSED = "refused"  # Closte refused our add for good; waits for a retry or a change


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
    failures: int = 0
    retry_at: float | None = None
    refusal: str | None = None  # the result kind of a final refusal

    @property
    def unfinished(self) -> bool:
        """An API call may have been cut short here; the next run must repeat it."""
        return self.state in (DomainState.ADDING, DomainState.REMOVING)

    @property
    def on_closte(self) -> bool:
        """Closte held it at the last look (or a delete of it is not confirmed yet)."""
        return self.state in (DomainState.HELD, DomainState.ADOPTED, DomainState.REMOVING)


@dataclass(frozen=True)
class Wish:
    """What a source wants recorded for a domain."""

    origin: DomainOrigin | str
    place: str = ""


@dataclass
class Settled:
    """The ledger after ``settle``, and what the pass's news changed."""

    entries: dict[str, LedgerEntry]
    adopted: list[str]  # Closte holds them; new to us
    missing: list[str]  # we believed Closte held them (no delete of ours out); its list says no
    landed: list[str]  # adds whose answer we never saw, found on Closte: ours
    written: int  # rows inserted or changed


_S = DomainState
# Where each step may start from (the step's own state: repeating it is allowed).
_MAY_ADD = frozenset({_S.WANTED, _S.ADDING, _S.REMOVED})
_MAY_CONFIRM = frozenset({_S.ADDING})
_MAY_HOLD = frozenset({_S.WANTED, _S.ADDING, _S.HELD, _S.ADOPTED, _S.REMOVING})
_MAY_REFUSE = frozenset({_S.WANTED, _S.ADDING, _S.REFUSED})
_MAY_REMOVE = frozenset({_S.HELD, _S.ADOPTED, _S.REMOVING})
_MAY_FORGET = frozenset({_S.WANTED, _S.REMOVING, _S.REMOVED})
_MAY_GO_MISSING = frozenset({_S.HELD, _S.ADOPTED, _S.REMOVING, _S.REMOVED})

# The ledger's columns in order: the rows below, and the fleet's shared copy of the ledger
# (cluster/shared.py), are these values in this order.
LEDGER_FIELDS = _FIELDS = (
    "domain",
    "wildcard",
    "state",
    "origin",
    "added_by_us",
    "place",
    "first_seen",
    "last_change",
    "last_error",
    "attempts",
    "failures",
    "retry_at",
    "refusal",
)
_COLUMNS = ", ".join(_FIELDS)
_UPDATE_ALL = (
    "UPDATE domains SET state = ?, origin = ?, added_by_us = ?, place = ?, last_change = ?, "
    "last_error = ?, attempts = ?, failures = ?, retry_at = ?, refusal = ? WHERE domain = ?"
)
_INSERT_ALL = f"INSERT INTO domains ({_COLUMNS}) VALUES ({', '.join('?' for _ in _FIELDS)})"
# An upsert, not INSERT OR REPLACE: a replace deletes the row first, and the stage rows
# that reference it would go with it.
_UPSERT_ALL = f"{_INSERT_ALL} ON CONFLICT(domain) DO UPDATE SET " + ", ".join(
    f"{f} = excluded.{f}" for f in _FIELDS[1:]
)


def entry_of(values: Sequence[Any]) -> LedgerEntry:
    """A ledger row's values (in LEDGER_FIELDS order, from SQLite or MySQL) as an entry."""
    (domain, wildcard, state, origin, added_by_us, place, first_seen, last_change,
     last_error, attempts, failures, retry_at, refusal) = values  # fmt: skip
    return LedgerEntry(
        domain=str(domain),
        wildcard=bool(wildcard),
        state=DomainState(state),
        origin=DomainOrigin(origin),
        added_by_us=bool(added_by_us),
        place=str(place),
        first_seen=float(first_seen),
        last_change=float(last_change),
        last_error=last_error,
        attempts=int(attempts),
        failures=int(failures),
        retry_at=None if retry_at is None else float(retry_at),
        refusal=refusal,
    )


def _entry(row: aiosqlite.Row) -> LedgerEntry:
    return entry_of(tuple(row))


def values_of(e: LedgerEntry) -> tuple[Any, ...]:
    """An entry as its row's values, in LEDGER_FIELDS order."""
    return (
        e.domain,
        int(e.wildcard),
        e.state.value,
        e.origin.value,
        int(e.added_by_us),
        e.place,
        e.first_seen,
        e.last_change,
        e.last_error,
        e.attempts,
        e.failures,
        e.retry_at,
        e.refusal,
    )


def _update_params(e: LedgerEntry) -> tuple[Any, ...]:
    return (
        e.state.value,
        e.origin.value,
        int(e.added_by_us),
        e.place,
        e.last_change,
        e.last_error,
        e.attempts,
        e.failures,
        e.retry_at,
        e.refusal,
        e.domain,
    )


async def _fetch(conn: aiosqlite.Connection, domain: str) -> LedgerEntry | None:
    row = await fetch_one(conn, f"SELECT {_COLUMNS} FROM domains WHERE domain = ?", (domain,))
    return _entry(row) if row is not None else None


def _fresh_intent(e: LedgerEntry, state: DomainState, at: float) -> LedgerEntry:
    """A new intent starts clean: no attempts, failures, backoff or refusal yet."""
    return replace(
        e,
        state=state,
        attempts=0,
        failures=0,
        retry_at=None,
        refusal=None,
        last_error=None,
        last_change=at,
    )


def settle_entry(
    entry: LedgerEntry | None,
    name: str,
    wish: Wish | None,
    listed: bool | None,
    at: float,
) -> LedgerEntry | None:
    """One domain's row after a pass's news: ``wish`` (a source wants it, or None) and
    ``listed`` (Closte's list has it; None when the list could not be read). Pure."""
    if entry is None:
        if listed:
            origin = DomainOrigin(wish.origin) if wish else DomainOrigin.ADOPTED
            state = _S.HELD if wish else _S.ADOPTED
        elif wish is not None:
            origin, state = DomainOrigin(wish.origin), _S.WANTED
        else:
            return None
        return LedgerEntry(
            domain=name,
            wildcard=is_wildcard(name),
            state=state,
            origin=origin,
            added_by_us=False,
            place=wish.place if wish else "",
            first_seen=at,
            last_change=at,
            last_error=None,
            attempts=0,
        )
    e = entry
    # What the sources say.
    if wish is not None:
        origin = DomainOrigin(wish.origin)
        if e.origin != origin or e.place != wish.place:
            e = replace(e, origin=origin, place=wish.place, last_change=at)
        if e.state is _S.REMOVED:
            e = _fresh_intent(e, _S.WANTED, at)
    elif e.state in (_S.WANTED, _S.REFUSED):
        # Never reached Closte and no longer wanted: history. A refusal ends here too,
        # so a domain that comes back is tried afresh.
        e = _fresh_intent(e, _S.REMOVED, at)
    if listed is None:
        return e
    # What Closte's own list says.
    state = e.state
    if listed:
        if state in (_S.ADDING, _S.WANTED) and e.attempts > 0:
            # We sent an add whose answer we never saw (a crash, a time-out): it landed.
            e = replace(_fresh_intent(e, _S.HELD, at), added_by_us=True)
        elif state in (_S.WANTED, _S.REFUSED, _S.REMOVED, _S.ADDING):
            # Someone else put it there (the dashboard, another tool): not ours.
            e = replace(_fresh_intent(e, _S.HELD if wish else _S.ADOPTED, at), added_by_us=False)
        elif state is _S.REMOVING and wish is not None:
            e = _fresh_intent(e, _S.HELD, at)  # wanted again before the delete went out
        elif state in (_S.HELD, _S.ADOPTED):
            settled = _S.HELD if (wish is not None or e.added_by_us) else _S.ADOPTED
            if settled is not state:
                e = replace(e, state=settled, last_change=at)
    elif state in (_S.HELD, _S.ADOPTED, _S.REMOVING, _S.ADDING):
        if state is _S.ADDING:
            # Its add did not land: the same intent goes on (attempts kept).
            e = replace(e, state=_S.WANTED if wish else _S.REMOVED, last_change=at)
        else:
            e = _fresh_intent(e, _S.WANTED if wish else _S.REMOVED, at)
    return e


class Ledger:
    def __init__(self, db: Database, scrubber: Scrubber) -> None:
        self._db = db
        self._scrub = scrubber
        # Each row as settle last read it, with its entry: a steady pass reads the same
        # 10,000 rows again, and comparing a row is cheaper than building its entry.
        self._read: dict[str, tuple[tuple[Any, ...], LedgerEntry]] = {}

    def _entries_of(self, rows: Iterable[aiosqlite.Row]) -> dict[str, LedgerEntry]:
        remembered = self._read
        read: dict[str, tuple[tuple[Any, ...], LedgerEntry]] = {}
        for row in rows:
            values = tuple(row)
            seen = remembered.get(values[0])
            entry = seen[1] if seen is not None and seen[0] == values else _entry(row)
            read[values[0]] = (values, entry)
        self._read = read
        return {name: entry for name, (_values, entry) in read.items()}

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

    async def settle(
        self,
        desired: Mapping[str, Wish],
        listed: Collection[str] | None,
        *,
        now: float | None = None,
    ) -> Settled:
        """Record a pass's news in one transaction (see ``settle_entry`` for the rules):
        ``desired`` maps ASCII names to what wants them; ``listed`` is what Closte's own
        list holds, or None when it could not be read (then only wishes are recorded)."""
        at = time.time() if now is None else now
        on_closte = set(listed) if listed is not None else set()
        adopted: list[str] = []
        missing: list[str] = []
        landed: list[str] = []
        inserts: list[LedgerEntry] = []
        updates: list[LedgerEntry] = []
        async with self._db.transaction("settling the ledger") as conn:
            rows = await conn.execute_fetchall(f"SELECT {_COLUMNS} FROM domains")
            current = self._entries_of(rows)
            result: dict[str, LedgerEntry] = {}
            for name in current.keys() | desired.keys() | on_closte:
                before = current.get(name)
                wish = desired.get(name)
                if wish is not None and wish.place:
                    wish = Wish(wish.origin, self._scrub.text(wish.place))
                seen = None if listed is None else name in on_closte
                after = settle_entry(before, name, wish, seen, at)
                if after is None:
                    continue
                result[name] = after
                if before is None:
                    inserts.append(after)
                    if after.state in (_S.ADOPTED, _S.HELD):
                        adopted.append(name)
                    continue
                if after == before:
                    continue
                updates.append(after)
                if before.state is _S.REMOVING and not after.on_closte:
                    pass  # our own delete landed before its outcome was recorded
                elif before.on_closte and not after.on_closte:
                    missing.append(name)
                elif after.added_by_us and not before.added_by_us and after.on_closte:
                    landed.append(name)
                elif after.on_closte and not before.on_closte and not after.added_by_us:
                    adopted.append(name)
            if inserts:
                await conn.executemany(_INSERT_ALL, [values_of(e) for e in inserts])
            if updates:
                await conn.executemany(_UPDATE_ALL, [_update_params(e) for e in updates])
        return Settled(
            entries=result,
            adopted=sorted(adopted),
            missing=sorted(missing),
            landed=sorted(landed),
            written=len(inserts) + len(updates),
        )

    async def take_over(self, rows: Sequence[LedgerEntry]) -> None:
        """Put whole rows into the ledger as they are, in one transaction: a new leader
        taking the fleet's shared rows. Every other write is a transition with its rules;
        a hand-over is not one."""
        if rows:
            async with self._db.transaction("taking over the shared ledger") as conn:
                await conn.executemany(_UPSERT_ALL, [values_of(e) for e in rows])

    async def want(
        self, domain: str, origin: DomainOrigin | str, *, place: str = "", now: float | None = None
    ) -> LedgerEntry:
        """A source wants ``domain`` (one row's share of ``settle``, nothing listed)."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        wish = Wish(origin, self._scrub.text(place))
        async with self._db.transaction(f"recording that {name} is wanted") as conn:
            before = await _fetch(conn, name)
            after = settle_entry(before, name, wish, None, at)
            assert after is not None
            if before is None:
                await conn.execute(_INSERT_ALL, values_of(after))
            elif after != before:
                await conn.execute(_UPDATE_ALL, _update_params(after))
        return after

    # -- intent before the API call, outcome after ---------------------------------------

    async def mark_adding(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Call *before* sending the add. Counts the attempt; ownership comes only with
        Closte's yes (``confirm_added``) or with its list showing the domain."""
        return await self._move(
            domain,
            DomainState.ADDING,
            _MAY_ADD,
            "attempts = attempts + 1, retry_at = NULL",
            now=now,
        )

    async def confirm_added(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte accepted our add (or said it already has it, after we sent one): ours."""
        return await self._move(
            domain,
            DomainState.HELD,
            _MAY_CONFIRM,
            "added_by_us = 1, attempts = 0, failures = 0, retry_at = NULL, last_error = NULL, "
            "refusal = NULL",
            now=now,
        )

    async def mark_held(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte holds ``domain``; ownership unchanged."""
        return await self._move(
            domain,
            DomainState.HELD,
            _MAY_HOLD,
            "attempts = 0, failures = 0, retry_at = NULL, last_error = NULL",
            now=now,
        )

    async def mark_refused(
        self, domain: str, refusal: str, error: str, *, now: float | None = None
    ) -> LedgerEntry:
        """Closte refused the add for good (taken by another application, invalid): not
        sent again until the domain leaves the desired set and comes back, or ``retry``."""
        return await self._move(
            domain,
            DomainState.REFUSED,
            _MAY_REFUSE,
            "refusal = ?, last_error = ?, retry_at = NULL, attempts = 0",
            now=now,
            params=(refusal, self._error_text(error)),
        )

    async def defer(
        self,
        domain: str,
        error: str,
        retry_at: float,
        *,
        not_made: bool = False,
        now: float | None = None,
    ) -> LedgerEntry:
        """A call failed for a reason that may pass: keep the intent, wait until
        ``retry_at`` (an add goes back to 'wanted'; a delete stays 'removing').
        ``not_made``: Closte's answer shows the add did not happen, so no earlier call of
        this intent is still in doubt (``attempts`` back to 0)."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"deferring {name}") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                raise LedgerTransitionError(name, None, "deferred", "record it with want() first")
            state = DomainState.WANTED if entry.state is DomainState.ADDING else entry.state
            await conn.execute(
                "UPDATE domains SET state = ?, failures = failures + 1, retry_at = ?, "
                "last_error = ?, last_change = ?, "
                "attempts = CASE WHEN ? THEN 0 ELSE attempts END WHERE domain = ?",
                (state.value, retry_at, self._error_text(error), at, not_made, name),
            )
            result = await _fetch(conn, name)
        assert result is not None
        return result

    async def retry(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """An operator asks to try again now: a refusal and any backoff are forgotten."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"retrying {name}") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                raise LedgerTransitionError(name, None, "retry", "no source wants it")
            state = DomainState.WANTED if entry.state is DomainState.REFUSED else entry.state
            await conn.execute(
                "UPDATE domains SET state = ?, failures = 0, retry_at = NULL, refusal = NULL, "
                "last_change = ? WHERE domain = ?",
                (state.value, at, name),
            )
            result = await _fetch(conn, name)
        assert result is not None
        return result

    async def mark_removing(
        self, domain: str, *, force: bool = False, now: float | None = None
    ) -> LedgerEntry:
        """Call *before* sending the delete. Refuses a domain we did not add unless
        ``force`` (an operator's explicit choice)."""
        return await self._move(
            domain,
            DomainState.REMOVING,
            _MAY_REMOVE,
            "attempts = CASE WHEN state = 'removing' THEN attempts + 1 ELSE 1 END, retry_at = NULL",
            now=now,
            require_ours=not force,
        )

    async def mark_removed(self, domain: str, *, now: float | None = None) -> LedgerEntry:
        """Closte no longer holds it (delete succeeded, or it was never sent)."""
        return await self._move(
            domain,
            DomainState.REMOVED,
            _MAY_FORGET,
            "attempts = 0, failures = 0, retry_at = NULL, last_error = NULL",
            now=now,
        )

    async def record_failure(
        self, domain: str, error: str, *, now: float | None = None
    ) -> LedgerEntry:
        """An API call failed; the state stays, so the next run tries again."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"recording a failure for {name}") as conn:
            entry = await _fetch(conn, name)
            if entry is None:
                raise LedgerTransitionError(name, None, "failure", "record it with want() first")
            await conn.execute(
                "UPDATE domains SET last_error = ?, last_change = ? WHERE domain = ?",
                (self._error_text(error), at, name),
            )
            result = await _fetch(conn, name)
        assert result is not None
        return result

    def _error_text(self, error: str) -> str:
        return self._scrub.text(error)[:MAX_ERROR_LENGTH]

    async def _move(
        self,
        domain: str,
        to: DomainState,
        allowed_from: frozenset[DomainState],
        extra_sets: str,
        *,
        now: float | None,
        require_ours: bool = False,
        params: tuple[Any, ...] = (),
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
                (*params, to.value, at, name),
            )
            result = await _fetch(conn, name)
        assert result is not None
        return result
