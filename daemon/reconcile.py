"""One reconcile pass: make Closte hold the desired set, recording intent before each call.

The order of a pass: read what Closte holds (``/getdomains``); settle the ledger with what
the sources want and what Closte listed, in one transaction; plan against the guard; then
add and remove, each call between a durable intent and its outcome, so a crash at any point
leaves a state the next pass resumes from. Every call is idempotent ("already added" and
"already gone" are successes).

A pass never raises because of one domain: a domain's failure is that domain's event and
ledger row. A refused add (taken by another application, an invalid name) is final until
the domain changes or an operator retries it; a transient failure holds only its domain back
(per-domain backoff), and an account-wide failure (the key refused) stops the pass's
remaining calls instead of sending each one to fail the same way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.closte.results import CallResult, ResultKind
from closte_sync.daemon.events import EventSink, Level, make_event
from closte_sync.daemon.plan import Plan, make_plan
from closte_sync.daemon.settings import GuardSettings
from closte_sync.daemon.sources.base import DesiredDomain, SourceSnapshot
from closte_sync.daemon.store import DomainState, LedgerEntry, Store, Wish
from closte_sync.daemon.store.ledger import settle_entry
from closte_sync.shared.domains import display

KIND = "integration-closte"

# Which ledger origins each source's domains carry (see DesiredDomain.origin).
ORIGINS_OF_SOURCE: dict[str, frozenset[str]] = {
    "database": frozenset({"database", "site"}),
    "domains-file": frozenset({"file"}),
}

# Refusals (``ResultKind.is_refusal``) are final for the domain until something changes;
# account-wide failures (``is_account_wide``) stop the pass's remaining calls.
# Answers Closte gives before it acts: the add was not made. A 5xx, a time-out, a lost
# connection or a garbled answer may hide an add that landed, and so may any earlier try
# the client retried.
NOT_MADE = frozenset(
    {
        ResultKind.AUTH_FAILED,
        ResultKind.PERMISSION_DENIED,
        ResultKind.ENDPOINT_NOT_FOUND,
        ResultKind.HTTP_ERROR,
        ResultKind.RATE_LIMITED,
    }
)


class GateClosed(Exception):
    """The pass may not act now (another daemon of the fleet leads); the message says why."""


class CallGate(Protocol):
    """What a fleet's leader awaits around Closte calls (``closte_sync.daemon.cluster``):
    each raises ``GateClosed`` when this daemon must stop acting at once."""

    async def settled(self, entries: Mapping[str, LedgerEntry]) -> None:
        """The ledger after the pass's news, before any call."""

    async def before_call(self, entry: LedgerEntry) -> None:
        """The intent just recorded, before its call goes out."""

    async def after_call(self, entry: LedgerEntry) -> None:
        """The outcome just recorded."""


@dataclass(frozen=True)
class Backoff:
    """Per-domain backoff after transient failures: base * 2^(n-1), capped, jittered."""

    base_s: float = 30.0
    max_s: float = 1800.0
    jitter: Callable[[float, float], float] = random.uniform

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        ceiling = min(self.max_s, self.base_s * 2 ** max(0, failures - 1))
        wait = self.jitter(ceiling / 2, ceiling)
        return max(wait, retry_after or 0.0)


@dataclass
class PassReport:
    plan: Plan | None = None
    held_before: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # Closte no longer lists them (removed by hand?)
    landed: tuple[str, ...] = ()  # adds whose answer we never saw, found on Closte
    held_removals: tuple[str, ...] = ()  # not removed: their source cannot be read now
    skipped_removals: tuple[str, ...] = ()  # not removed: --upsert-only
    deferred: tuple[str, ...] = ()  # not sent now: backing off after transient failures
    refused: tuple[str, ...] = ()  # Closte refused them for good; waiting for a retry
    results: list[CallResult] = field(default_factory=list)
    error: str | None = None  # the pass could not run (Closte's list failed)
    stopped: str | None = None  # an account-wide failure stopped the remaining calls
    dry_run: bool = False
    entries: Mapping[str, LedgerEntry] = field(default_factory=dict)

    @property
    def failures(self) -> list[CallResult]:
        return [r for r in self.results if not r.ok]

    @property
    def in_sync(self) -> bool:
        """Closte holds what is desired, and nothing waits or is held back."""
        plan = self.plan
        return (
            self.error is None
            and self.stopped is None
            and plan is not None
            and plan.held is None
            and not self.failures
            and not self.deferred
            and not self.refused
            and not self.held_removals
            and not self.skipped_removals
            and (not self.dry_run or plan.empty)
        )


def stable_place(domain: DesiredDomain) -> str:
    """Where a domain comes from, without a file's line number: an edit that shifts lines
    must not rewrite every ledger row (the current line is in the source's snapshot)."""
    if domain.origin == "file":
        path, sep, line = domain.place.rpartition(":")
        if sep and line.isdigit():
            return path
    return domain.place


async def reconcile_once(
    desired: Mapping[str, DesiredDomain],
    closte: ClosteClient,
    store: Store,
    guard: GuardSettings,
    events: EventSink,
    *,
    force: bool = False,
    release: str | None = None,
    unhealthy: Collection[SourceSnapshot] = (),
    upsert_only: bool = False,
    dry_run: bool = False,
    workers: int = 4,
    backoff: Backoff | None = None,
    now: Callable[[], float] = time.time,
    on_added: Callable[[str], Awaitable[None]] | None = None,
    gate: CallGate | None = None,
) -> PassReport:
    """``gate``: awaited before the calls and around each one (several nodes, one leader).

    ``on_added`` is awaited for each domain the moment Closte accepts its add (its stage
    checks can start then, not at the end of a long batch).

    ``unhealthy``: the snapshots of sources that could not be read. Their last good sets
    stand in for them, and no domain they brought (by its ledger origin) is removed, so an
    outage or a missing file never costs an alias; the other sources' removals go ahead.
    ``release``: the id of a held plan the operator released (see plan.py)."""
    report = PassReport(dry_run=dry_run)
    wishes = {name: Wish(d.origin, stable_place(d)) for name, d in desired.items()}
    listed = await closte.list_aliases()
    if not listed.ok:
        # Without Closte's own list, read in full, we cannot tell what to add or remove
        # safely: only the wishes are recorded, and the next pass tries again.
        report.error = f"listing Closte's aliases failed: {listed.kind} ({listed.message})"
        events.emit(make_event(Level.ERROR, KIND, report.error, hint=listed.kind.hint_id))
        if not dry_run:
            await store.ledger.settle(wishes, None, now=now())
        return report
    held = set(listed.domains)
    report.held_before = tuple(sorted(held))
    if dry_run:
        entries = _settled_in_memory(await store.ledger.entries(), wishes, held, now())
    else:
        settled = await store.ledger.settle(wishes, held, now=now())
        entries = settled.entries
        report.adopted, report.missing = tuple(settled.adopted), tuple(settled.missing)
        report.landed = tuple(settled.landed)
        _report_news(report, events)
    report.entries = entries
    if gate is not None and not dry_run:
        try:
            await gate.settled(entries)
        except GateClosed as exc:
            report.stopped = str(exc)
            return report

    held_origins = {origin for s in unhealthy for origin in ORIGINS_OF_SOURCE.get(s.source, ())}
    ours = [e for e in entries.values() if e.added_by_us]
    owned = {e.domain for e in ours if e.origin not in held_origins}
    plan = make_plan(desired.keys(), held, owned, guard, force=force, release=release)
    report.plan = plan
    kept_back = sorted(
        e.domain
        for e in ours
        if e.origin in held_origins and e.domain in held and e.domain not in desired
    )
    if kept_back:
        report.held_removals = tuple(kept_back)
        sources = ", ".join(sorted(s.source for s in unhealthy))
        why = "; ".join(p.message for s in unhealthy for p in s.problems[:1])
        events.emit(
            make_event(
                Level.WARNING,
                "guard",
                f"not removing {len(kept_back)} domain(s) while {sources} cannot be read: {why}",
                domains=kept_back[:50],
            )
        )
    if plan.held is not None:
        events.emit(
            make_event(
                Level.WARNING,
                "guard",
                plan.held.reason,
                plan_id=plan.held.id,
                domains=list(plan.held.domains[:50]),
                count=len(plan.held.domains),
            )
        )

    at = now()
    adds, removes, deferred, refused = [], [], [], []
    for name in plan.add:
        entry = entries.get(name)
        if entry is not None and entry.state is DomainState.REFUSED:
            refused.append(name)
        elif entry is not None and entry.retry_at is not None and entry.retry_at > at:
            deferred.append(name)
        else:
            adds.append(name)
    removals = plan.remove
    if upsert_only:
        report.skipped_removals, removals = removals, ()
    for name in removals:
        entry = entries.get(name)
        if entry is not None and entry.retry_at is not None and entry.retry_at > at:
            deferred.append(name)
        else:
            removes.append(name)
    report.refused, report.deferred = tuple(refused), tuple(sorted(deferred))
    if dry_run:
        return report
    runner = _Calls(closte, store, events, backoff or Backoff(), now, on_added, gate)
    report.results = await runner.run(
        [(runner.add, n) for n in adds] + [(runner.remove, n) for n in removes], workers
    )
    report.stopped = runner.stopped
    return report


def _settled_in_memory(
    rows: Sequence[LedgerEntry], wishes: Mapping[str, Wish], held: set[str], at: float
) -> dict[str, LedgerEntry]:
    """The ledger as ``settle`` would leave it, written nowhere: a dry run must plan from
    the same rows as the real pass (a stale row would otherwise count as ours)."""
    current = {e.domain: e for e in rows}
    entries: dict[str, LedgerEntry] = {}
    for name in current.keys() | wishes.keys() | held:
        after = settle_entry(current.get(name), name, wishes.get(name), name in held, at)
        if after is not None:
            entries[name] = after
    return entries


def _report_news(report: PassReport, events: EventSink) -> None:
    for name in report.adopted:
        events.emit(
            make_event(
                Level.INFO,
                KIND,
                f"Closte already holds {display(name)}; recorded as not added by closte-sync",
                domain=name,
            )
        )
    for name in report.missing:
        events.emit(
            make_event(
                Level.WARNING,
                KIND,
                f"Closte no longer lists {display(name)} (removed in the dashboard?)",
                domain=name,
            )
        )
    for name in report.landed:
        events.emit(
            make_event(
                Level.INFO,
                KIND,
                f"an earlier add of {display(name)} landed: Closte lists it",
                domain=name,
            )
        )


class _Calls:
    """Runs a pass's calls on a few workers, each between its intent and its outcome."""

    def __init__(
        self,
        closte: ClosteClient,
        store: Store,
        events: EventSink,
        backoff: Backoff,
        now: Callable[[], float],
        on_added: Callable[[str], Awaitable[None]] | None = None,
        gate: CallGate | None = None,
    ) -> None:
        self._closte = closte
        self._gate = gate
        self._on_added = on_added
        self._ledger = store.ledger
        self._events = events
        self._backoff = backoff
        self._now = now
        self.stopped: str | None = None
        self.stopped_hint: str | None = None

    async def run(
        self,
        calls: Sequence[tuple[Callable[[str], Awaitable[CallResult]], str]],
        workers: int,
    ) -> list[CallResult]:
        queue = list(reversed(calls))
        results: list[CallResult] = []

        async def worker() -> None:
            while queue and self.stopped is None:
                step, name = queue.pop()
                try:
                    result = await step(name)
                except GateClosed as exc:
                    self.stopped = str(exc)  # the other workers stop before their next call
                    continue
                except Exception as exc:  # one domain's trouble is that domain's event
                    self._events.emit(
                        make_event(
                            Level.ERROR,
                            KIND,
                            f"{display(name)}: the call could not be completed: {exc}",
                            domain=name,
                        )
                    )
                    continue
                results.append(result)

        await asyncio.gather(*(worker() for _ in range(max(1, min(workers, len(calls))))))
        if self.stopped is not None and queue:
            self._events.emit(
                make_event(
                    Level.ERROR,
                    KIND,
                    f"{len(queue)} call(s) not sent this pass: {self.stopped}",
                    hint=self.stopped_hint,
                )
            )
        return results

    async def add(self, name: str) -> CallResult:
        entry = await self._ledger.mark_adding(name)
        if self._gate is not None:
            await self._gate.before_call(entry)
        result = await self._closte.add_alias(name)
        if result.ok:
            await self._after(await self._ledger.confirm_added(name))
            if self._on_added is not None:
                await self._on_added(name)
        elif result.kind.is_refusal:
            await self._after(
                await self._ledger.mark_refused(name, str(result.kind), _text(result))
            )
            hint = result.hint
            self._events.emit(
                make_event(
                    Level.ERROR,
                    f"domain-{name}",
                    f"Closte refused to add {display(name)}: {_text(result)}; not sent again"
                    f" until it changes or `closte-sync retry {display(name)}`",
                    domain=name,
                    hint=hint.id if hint else None,
                )
            )
        else:
            not_made = result.kind in NOT_MADE and result.attempts <= 1
            await self._fail(name, entry.failures + 1, result, not_made=not_made)
        return result

    async def remove(self, name: str) -> CallResult:
        entry = await self._ledger.mark_removing(name)
        if self._gate is not None:
            await self._gate.before_call(entry)
        result = await self._closte.remove_alias(name)
        if result.ok:
            await self._after(await self._ledger.mark_removed(name))
        else:
            await self._fail(name, entry.failures + 1, result)
        return result

    async def _fail(
        self, name: str, failures: int, result: CallResult, *, not_made: bool = False
    ) -> None:
        wait = self._backoff.delay(failures, result.retry_after)
        await self._after(
            await self._ledger.defer(name, _text(result), self._now() + wait, not_made=not_made)
        )
        if result.kind.is_account_wide and self.stopped is None:
            self.stopped_hint = result.kind.hint_id
            self.stopped = f"Closte answered {result.kind} ({result.message or ''})"

    async def _after(self, entry: LedgerEntry) -> None:
        if self._gate is not None:
            await self._gate.after_call(entry)


def _text(result: CallResult) -> str:
    return f"{result.kind}: {result.message}" if result.message else str(result.kind)
