"""The reconcile pass under every sequence hypothesis can think of.

A sync state machine that owns an event loop per example (``asyncio.Runner``), a fresh
sandbox API, a store file and a client. Between passes anything may happen: the two sources
change or become unreadable, Closte's list or one domain's calls fail, another application
takes a name, someone adds or removes aliases by hand, the daemon restarts, or it crashes
between an intent and its outcome.

What must hold, checked against the sandbox's own request log, not the ledger:

- a pass never raises, and no call ends in an internal error;
- every delete closte-sync sends is for a name whose presence on Closte comes from its own
  add: one Closte accepted, or one whose answer was lost (a crash between intent and outcome,
  a 5xx answer), which the ledger counts as landed by design;
- no delete is sent for a name whose source cannot be read;
- once faults stop, within two passes Closte holds the desired set except the names Closte
  refused, plus only aliases someone else put there.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.events import MemorySink
from closte_sync.daemon.reconcile import ORIGINS_OF_SOURCE, Backoff, PassReport, reconcile_once
from closte_sync.daemon.settings import ClosteSettings, GuardSettings, StoreSettings
from closte_sync.daemon.sources.base import DesiredDomain, SourceProblem, SourceSnapshot
from closte_sync.daemon.store import DomainState, Store, open_store
from closte_sync.daemon.store.errors import LedgerTransitionError
from closte_sync.sandbox.api import SandboxApi
from closte_sync.sandbox.faults import DomainFault, FaultKind, Faults
from closte_sync.sandbox.state import SandboxState
from closte_sync.shared.secret import Secret

KEY = "sandbox-reconcile-stateful-key-0123456789"
OTHER_APPLICATION = "sandbox-another-application-key"
POOL = ("a.com", "b.com", "c.com", "d.com", "e.com", "f.com", "*.w.com", "xn--bcher-kva.com")
SOURCES = ("database", "domains-file")
ORIGIN_OF = {"database": "database", "domains-file": "file"}
NO_GUARD = GuardSettings(max_remove_share=1.0, min_held=0)
BACKOFF = Backoff(base_s=30.0, max_s=600.0, jitter=lambda low, high: high)
NO_BACKOFF = Backoff(base_s=0.0, max_s=0.0, jitter=lambda low, high: high)
PASS_S = 60.0  # the clock moves this much between passes

names = st.sampled_from(POOL)
# Faults and hands on Closte pick from fewer names, so they meet the sources' names often.
closte_names = st.sampled_from(POOL[:3] + POOL[-1:])
sources = st.sampled_from(SOURCES)
# An answer that proves the add was not made, and one that may hide an add that landed.
DOMAIN_FAULTS = ("rate_limit", "server_error", "permission")
LIST_FAULTS = ("server_error", "malformed", "empty", "html", "permission")
# Outcomes of an add after which Closte may hold the alias although it did not say so.
LOST_ANSWERS = frozenset({"server_error", "timeout", "reset", "empty", "malformed", "html"})


class Clock:
    def __init__(self) -> None:
        self.at = 1_000_000.0

    def __call__(self) -> float:
        return self.at


class ReconcileMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.Runner()
        self.folder = tempfile.TemporaryDirectory(prefix="reconcile-stateful-")
        self.path = Path(self.folder.name) / "state.sqlite3"
        self.sandbox = SandboxState(api_keys={KEY, OTHER_APPLICATION})
        self.faults = Faults(seed=0)
        self.api = SandboxApi(self.sandbox, self.faults)
        self.clock = Clock()
        self.sink = MemorySink()
        self.broken = False
        self.loop.run(self.api.start())
        self.store, self.client = self.loop.run(self._open())
        # The sources: what they hold now, whether they can be read, their last good set.
        self.current: dict[str, set[str]] = {s: set() for s in SOURCES}
        self.healthy = {s: True for s in SOURCES}
        self.last_good: dict[str, set[str]] = {s: set() for s in SOURCES}
        self.list_fault: str | None = None
        # From the request log: names whose presence on our key comes from our accepted add,
        # and names an add of ours may have reached without our knowing.
        self.ours: set[str] = set()
        self.maybe_ours: set[str] = set()
        self.origin: dict[str, str] = {}  # the source that last brought each name
        self.seen = 0  # request log entries already checked

    # -- plumbing ------------------------------------------------------------------------

    async def _open(self) -> tuple[Store, ClosteClient]:
        store = await open_store(StoreSettings(path=self.path))
        client = ClosteClient(
            ClosteSettings(
                api_key=Secret(KEY),
                base_url=self.api.url,
                rate_per_second=10_000,
                timeout_s=5.0,
                retry_budget=0,
            )
        )
        return store, client

    async def _close(self) -> None:
        await self.client.aclose()
        await self.store.aclose()

    def _held(self, key: str = KEY) -> set[str]:
        return set(self.sandbox.held(key))

    def _held_by_anyone(self, name: str) -> bool:
        return self.sandbox.find_alias(name) is not None

    def _seen_sources(self) -> dict[str, set[str]]:
        return {s: self.current[s] if self.healthy[s] else self.last_good[s] for s in SOURCES}

    def _desired(self) -> dict[str, DesiredDomain]:
        desired: dict[str, DesiredDomain] = {}
        for source, held in self._seen_sources().items():
            origin = ORIGIN_OF[source]
            for i, name in enumerate(sorted(held), 1):
                place = f"domains.txt:{i}" if origin == "file" else f"wp_wu_domain_mappings#{i}"
                desired.setdefault(name, DesiredDomain(name=name, origin=origin, place=place))  # type: ignore[arg-type]
        return desired

    def _unhealthy(self) -> list[SourceSnapshot]:
        return [
            SourceSnapshot(
                source=s,
                domains={n: DesiredDomain(name=n, origin=ORIGIN_OF[s]) for n in self.last_good[s]},  # type: ignore[arg-type]
                healthy=False,
                problems=(SourceProblem(s, "cannot be read"),),
            )
            for s in SOURCES
            if not self.healthy[s]
        ]

    def _guarded(self, work: object) -> None:
        """Run a step; remember a failure so teardown does not pile a second one on it."""
        try:
            assert callable(work)
            work()
        except BaseException:
            self.broken = True
            raise

    def _check_log(self, unhealthy: frozenset[str] = frozenset()) -> None:
        """Walk the requests sent since the last look, checking every delete."""
        for request in self.api.log[self.seen :]:
            name = request.fields.get("domain", "")
            if request.path.endswith("/adddomainalias"):
                if request.outcome == "ok":
                    self.ours.add(name)
                elif request.outcome in LOST_ANSWERS:
                    self.maybe_ours.add(name)
                else:  # Closte answered: the add was not made
                    self.maybe_ours.discard(name)
            elif request.path.endswith("/deletedomainalias"):
                assert name in self.ours or name in self.maybe_ours, (
                    f"closte-sync sent a delete for {name}, which it never added"
                )
                source = self.origin.get(name)
                assert source not in unhealthy, (
                    f"closte-sync sent a delete for {name} while {source} cannot be read"
                )
                if request.outcome == "ok":
                    self.ours.discard(name)
                    self.maybe_ours.discard(name)
        self.seen = len(self.api.log)
        internal = [e.message for e in self.sink.events if "could not be completed" in e.message]
        assert not internal, internal

    def _pass(self, backoff: Backoff = BACKOFF) -> PassReport:
        desired = self._desired()
        for name, domain in desired.items():
            self.origin[name] = next(s for s, o in ORIGIN_OF.items() if o == domain.origin)
        unhealthy = self._unhealthy()
        before = self._held()
        list_fault, self.list_fault = self.list_fault, None
        if list_fault is not None:
            self.faults.queue.append(FaultKind(list_fault))
        report = self.loop.run(
            reconcile_once(
                desired,
                self.client,
                self.store,
                NO_GUARD,
                self.sink,
                unhealthy=unhealthy,
                backoff=backoff,
                now=self.clock,
                workers=1,
            )
        )
        self.clock.at += PASS_S
        self._check_log(frozenset(s.source for s in unhealthy))
        if list_fault is None:
            assert report.error is None, report.error
            # The ledger now knows these never reached Closte and are wanted by no one.
            self.maybe_ours -= set(POOL) - before - desired.keys()
        else:
            assert report.error is not None and report.results == []
        return report

    # -- the sources -----------------------------------------------------------------------

    @initialize(database=st.sets(names), domains_file=st.sets(names))
    def sources_start_with(self, database: set[str], domains_file: set[str]) -> None:
        self.current = {"database": set(database), "domains-file": set(domains_file)}

    @rule(source=sources, name=names)
    def source_adds(self, source: str, name: str) -> None:
        self.current[source].add(name)

    @rule(source=sources, name=names)
    def source_drops(self, source: str, name: str) -> None:
        self.current[source].discard(name)

    @rule(source=sources)
    def source_unreadable(self, source: str) -> None:
        if self.healthy[source]:
            self.healthy[source] = False
            self.last_good[source] = set(self.current[source])

    @rule(source=sources)
    def source_readable(self, source: str) -> None:
        self.healthy[source] = True

    # -- Closte ------------------------------------------------------------------------------

    @rule(kind=st.sampled_from(LIST_FAULTS))
    def next_list_fails(self, kind: str) -> None:
        self.list_fault = kind

    @rule(name=closte_names, kind=st.sampled_from(DOMAIN_FAULTS))
    def next_call_for_fails(self, name: str, kind: str) -> None:
        self.faults.domains[name] = DomainFault(FaultKind(kind), times=1)

    @rule(name=closte_names)
    def another_application_takes(self, name: str) -> None:
        if not self._held_by_anyone(name):
            self.sandbox.add_alias(OTHER_APPLICATION, name, wildcard=name.startswith("*."))

    @rule(name=closte_names)
    def another_application_lets_go(self, name: str) -> None:
        self.sandbox.remove_alias(OTHER_APPLICATION, name)

    @rule(name=closte_names)
    def added_by_hand(self, name: str) -> None:
        if not self._held_by_anyone(name):
            self.sandbox.add_alias(KEY, name, wildcard=name.startswith("*."))

    @rule(name=closte_names)
    def removed_by_hand(self, name: str) -> None:
        if self.sandbox.remove_alias(KEY, name):
            self.ours.discard(name)

    # -- the daemon ------------------------------------------------------------------------

    @rule()
    def reconcile(self) -> None:
        self._guarded(self._pass)

    @rule(name=closte_names)
    def operator_retries(self, name: str) -> None:
        async def retry() -> None:
            if await self.store.ledger.get(name) is not None:
                await self.store.ledger.retry(name)

        self._guarded(lambda: self.loop.run(retry()))

    @rule()
    def restart(self) -> None:
        def work() -> None:
            self.loop.run(self._close())
            self.store, self.client = self.loop.run(self._open())

        self._guarded(work)

    @rule(name=names, call=st.booleans())
    def crash_after_add_intent(self, name: str, call: bool) -> None:
        """The intent of an add is recorded; the process dies before or after the call."""

        async def crash() -> bool:
            if name not in self._desired() or name in self._held():
                return False
            entry = await self.store.ledger.get(name)
            if entry is None or entry.state is DomainState.REFUSED:
                return False
            try:
                await self.store.ledger.mark_adding(name)
            except LedgerTransitionError:
                return False
            if call:
                await self.client.add_alias(name)
            return True

        def work() -> None:
            intent = self.loop.run(crash())
            self._check_log()
            if intent:  # whatever Closte answered, the ledger never heard it
                self.maybe_ours.add(name)
            self.restart()

        self._guarded(work)

    @rule(call=st.booleans())
    def crash_after_remove_intent(self, call: bool) -> None:
        """The reconciler's next delete: its intent recorded, then the process dies."""

        async def crash() -> None:
            desired = self._desired()
            kept = {o for s in self._unhealthy() for o in ORIGINS_OF_SOURCE[s.source]}
            held = self._held()
            for entry in await self.store.ledger.entries():
                name = entry.domain
                if (
                    entry.added_by_us
                    and name in held
                    and name not in desired
                    and entry.origin.value not in kept
                ):
                    await self.store.ledger.mark_removing(name)
                    if call:
                        await self.client.remove_alias(name)
                    return

        def work() -> None:
            self.loop.run(crash())
            self._check_log(frozenset(s.source for s in self._unhealthy()))
            self.restart()

        self._guarded(work)

    @precondition(lambda self: not self.broken)
    @rule()
    def faults_stop(self) -> None:
        self._guarded(self._converge)

    def _converge(self) -> None:
        """Faults stop and every source reads again: two passes put Closte in order."""
        self.faults.domains.clear()
        self.faults.queue.clear()
        self.list_fault = None
        for source in SOURCES:
            self.healthy[source] = True
        self.clock.at += BACKOFF.max_s + PASS_S  # every backoff deadline has passed
        self._pass(NO_BACKOFF)
        second = self._pass(NO_BACKOFF)
        assert second.results == [] and second.stopped is None and second.deferred == ()
        desired = set(self._desired())
        refused = {
            e.domain for e in self.loop.run(self.store.ledger.entries([DomainState.REFUSED]))
        }
        held = self._held()
        assert desired - refused <= held, f"not on Closte: {sorted(desired - refused - held)}"
        leftovers = held - desired
        assert not leftovers & self.ours, f"still on Closte: {sorted(leftovers & self.ours)}"
        for name in leftovers:
            entry = self.loop.run(self.store.ledger.get(name))
            assert entry is not None and not entry.added_by_us, name
        for name in refused:
            assert name in desired and name not in held, name

    def teardown(self) -> None:
        try:
            if not self.broken:
                self._converge()
        finally:
            try:
                self.loop.run(self._close())
                self.loop.run(self.api.stop())
            finally:
                self.loop.close()
                self.folder.cleanup()


def test_reconcile_keeps_its_promises_under_any_sequence() -> None:
    run_state_machine_as_test(
        ReconcileMachine,
        settings=settings(max_examples=25, stateful_step_count=15, deadline=None),
    )


def test_an_alias_made_by_hand_after_a_429_is_left_alone() -> None:
    """A sequence random search rarely builds, run through the same machine and checks."""
    machine = ReconcileMachine()
    try:
        machine.sources_start_with({"a.com"}, set())
        machine.next_call_for_fails("a.com", "rate_limit")
        machine.reconcile()
        machine.added_by_hand("a.com")
        machine.reconcile()
        machine.source_drops("database", "a.com")
        machine.reconcile()
        assert "a.com" in machine.sandbox.held(KEY)
    finally:
        machine.teardown()
