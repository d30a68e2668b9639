"""One reconcile pass: make Closte hold the desired set, recording intent before each call.

The order of a pass: finish calls a previous run left unfinished (the ledger's 'adding' and
'removing' rows), read what Closte holds (``/getdomains``), adopt what we did not know,
plan against the guard, then add and remove. Each call is preceded by a durable ledger
step, so a crash at any point leaves a state the next pass resumes from, and every call is
idempotent ("already added" and "already gone" are successes). The long-running reconciler
loop builds on this pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field

from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.closte.results import CallResult
from closte_sync.daemon.events import EventSink, Level, make_event
from closte_sync.daemon.plan import Plan, make_plan
from closte_sync.daemon.settings import GuardSettings
from closte_sync.daemon.sources.base import DesiredDomain, SourceSnapshot
from closte_sync.daemon.store import DomainState, Ledger, Store

KIND = "integration-closte"

# Which ledger origins each source's domains carry (see DesiredDomain.origin).
ORIGINS_OF_SOURCE: dict[str, frozenset[str]] = {
    "database": frozenset({"database", "site"}),
    "domains-file": frozenset({"file"}),
}


@dataclass
class PassReport:
    plan: Plan | None = None
    held_before: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    held_removals: tuple[str, ...] = ()  # not removed: their source cannot be read now
    results: list[CallResult] = field(default_factory=list)
    error: str | None = None  # the pass could not run (Closte's list failed)

    @property
    def failures(self) -> list[CallResult]:
        return [r for r in self.results if not r.ok]


async def reconcile_once(
    desired: Mapping[str, DesiredDomain],
    closte: ClosteClient,
    store: Store,
    guard: GuardSettings,
    events: EventSink,
    *,
    force: bool = False,
    unhealthy: Collection[SourceSnapshot] = (),
) -> PassReport:
    """``unhealthy``: the snapshots of sources that could not be read. Their last good sets
    stand in for them, and no domain they brought (by its ledger origin) is removed, so an
    outage or a missing file never costs an alias; the other sources' removals go ahead."""
    report = PassReport()
    for name, wanted in desired.items():
        await store.ledger.want(name, wanted.origin, place=wanted.place)

    listed = await closte.list_aliases()
    if not listed.ok:
        # Without Closte's own list we cannot tell what to add safely: try again next pass.
        report.error = f"listing Closte's aliases failed: {listed.kind} ({listed.message})"
        events.emit(make_event(Level.ERROR, KIND, report.error))
        return report
    held = set(listed.domains)
    report.held_before = tuple(sorted(held))

    for believed in await store.ledger.entries(
        [DomainState.HELD, DomainState.ADOPTED, DomainState.REMOVING]
    ):
        if believed.domain not in held:
            await store.ledger.mark_missing(believed.domain)

    adopted: list[str] = []
    for name in sorted(held):
        entry = await store.ledger.get(name)
        if entry is None or entry.state in (DomainState.REMOVED, DomainState.ADDING):
            await store.ledger.adopt(name)
            if entry is None:
                adopted.append(name)
    report.adopted = tuple(adopted)

    held_origins = {origin for s in unhealthy for origin in ORIGINS_OF_SOURCE.get(s.source, ())}
    entries = [e for e in await store.ledger.entries() if e.added_by_us]
    owned = {e.domain for e in entries if e.origin not in held_origins}
    plan = make_plan(desired.keys(), held, owned, guard, force=force)
    kept_back = sorted(
        e.domain
        for e in entries
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
    report.plan = plan
    if plan.refused_removals:
        events.emit(make_event(Level.WARNING, "guard", plan.refused_removals))

    for name in plan.keep:
        kept = await store.ledger.get(name)
        if kept is not None and kept.state is not DomainState.HELD:
            await store.ledger.mark_held(name)

    ledger = store.ledger
    results = await asyncio.gather(
        *(
            _call(n, ledger, ledger.mark_adding, closte.add_alias, ledger.mark_held)
            for n in plan.add
        ),
        *(
            _call(n, ledger, ledger.mark_removing, closte.remove_alias, ledger.mark_removed)
            for n in plan.remove
        ),
    )
    report.results = list(results)
    return report


async def _call(
    name: str,
    ledger: Ledger,
    intend: Callable[[str], Awaitable[object]],
    send: Callable[[str], Awaitable[CallResult]],
    confirm: Callable[[str], Awaitable[object]],
) -> CallResult:
    """Intent in the ledger, then the call, then its outcome: the order that makes a crash
    at any point safe to resume from."""
    await intend(name)
    result = await send(name)
    if result.ok:
        await confirm(name)
    else:
        await ledger.record_failure(name, f"{result.kind}: {result.message or ''}")
    return result
