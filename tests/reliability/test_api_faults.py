"""A 2,000-domain sync through a Closte that fails a third of its answers: 5xx, time-outs,
429 with Retry-After, malformed JSON and HTML pages. It converges, every failure is an event
with a troubleshooting hint, and the client keeps to its rate limit.

The pass is driven in-process (``reconcile_once``) with the real client, store and sandbox.
The daemon's backoff is kept as it ships (30 s doubling to 30 min, per domain), but passes
run on a virtual clock that moves two minutes between them, so waiting costs nothing.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from closte_sync.daemon.closte.client import EVENT_KIND, ClosteClient
from closte_sync.daemon.events import Level, MemorySink
from closte_sync.daemon.reconcile import Backoff, PassReport, reconcile_once
from closte_sync.daemon.settings import ClosteSettings, GuardSettings, StoreSettings
from closte_sync.daemon.sources.base import DesiredDomain
from closte_sync.daemon.store import Store, open_store
from closte_sync.sandbox.api import LoggedRequest, SandboxApi
from closte_sync.sandbox.faults import Faults
from closte_sync.sandbox.state import SandboxState
from closte_sync.shared.hints import get_hint
from closte_sync.shared.secret import Secret

KEY = "sandbox-api-faults-key-0123456789abcdef"
DOMAINS = 2000
RATE = 150.0  # requests per second the client is configured for
CONCURRENCY = 8
RATES = {
    "server_error": 0.30,
    "timeout": 0.05,
    "rate_limit": 0.05,
    "malformed": 0.01,
    "html": 0.02,
}
PASS_S = 120.0  # the virtual clock moves this much between passes
MAX_PASSES = 400


class Clock:
    def __init__(self) -> None:
        self.at = 1_000_000.0

    def __call__(self) -> float:
        return self.at


@dataclass
class Rig:
    state: SandboxState
    faults: Faults
    api: SandboxApi
    store: Store
    client: ClosteClient
    events: MemorySink


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    state = SandboxState(api_keys={KEY})
    faults = Faults(seed=11, rates=RATES, retry_after="1", hold_s=3.0)
    api = SandboxApi(state, faults)
    await api.start()
    events = MemorySink()
    store = await open_store(StoreSettings(path=tmp_path / "state.sqlite3"))
    client = ClosteClient(
        ClosteSettings(
            api_key=Secret(KEY),
            base_url=api.url,
            concurrency=CONCURRENCY,
            rate_per_second=RATE,
            timeout_s=0.5,
            retry_budget=2,
            retry_base_s=0.05,
            retry_max_s=2.0,
        ),
        events=events,
    )
    try:
        yield Rig(state, faults, api, store, client, events)
    finally:
        await client.aclose()
        await store.aclose()
        await api.stop()


def _most_in_window(log: list[LoggedRequest], window: float) -> int:
    """The largest number of requests that arrived within any ``window`` seconds."""
    starts = sorted(r.start for r in log)
    most, first = 0, 0
    for last, at in enumerate(starts):
        while at - starts[first] > window:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.heavy
async def test_a_2000_domain_sync_converges_through_faults_within_the_rate(rig: Rig) -> None:
    names = [f"f{i:04}.example.test" for i in range(DOMAINS)]
    desired = {
        n: DesiredDomain(name=n, origin="file", place=f"domains.txt:{i + 1}")
        for i, n in enumerate(names)
    }
    clock = Clock()
    reports: list[PassReport] = []
    pass_starts: list[float] = []
    for _ in range(MAX_PASSES):
        pass_starts.append(time.time())
        report = await reconcile_once(
            desired,
            rig.client,
            rig.store,
            GuardSettings(),
            rig.events,
            workers=CONCURRENCY,
            backoff=Backoff(),
            now=clock,
        )
        reports.append(report)
        if report.in_sync:
            break
        clock.at += PASS_S
    assert reports[-1].in_sync, f"not in sync after {len(reports)} passes"
    assert set(rig.state.held(KEY)) == set(names)
    print(f"converged in {len(reports)} passes, {len(rig.api.log)} requests")

    log = list(rig.api.log)
    outcomes = Counter(r.outcome for r in log)
    # Every kind of fault was met, many times over.
    for kind in RATES:
        assert outcomes[kind] >= 5, outcomes
    assert not [r for r in log if r.path.endswith("/deletedomainalias")]

    # Every failure is an event with a hint from the catalogue.
    hinted = {
        (e.details.get("operation"), e.domain, e.details.get("result"))
        for e in rig.events.events
        if e.kind == EVENT_KIND and e.level is not Level.INFO and e.details.get("hint")
    }
    for result in (r for report in reports for r in report.failures):
        assert (result.operation, result.domain, str(result.kind)) in hinted, result
    listing_failures = [r for r in reports if r.error is not None]
    listing_events = [
        e
        for e in rig.events.events
        if e.kind == EVENT_KIND
        and e.details.get("operation") == "list"
        and e.level is not Level.INFO
    ]
    assert len(listing_events) >= len(listing_failures)
    for event in rig.events.events:
        if event.details.get("operation") is not None and event.level is not Level.INFO:
            hint = event.details.get("hint")
            assert hint, event
            assert get_hint(hint).id == hint

    # The rate limit holds: in any stretch of time, at most the bucket plus the rate.
    # (Half a second of slack: the sandbox shares this event loop and may see arrivals late.)
    for window in (1.0, 5.0):
        bound = CONCURRENCY + RATE * (window + 0.5)
        assert _most_in_window(log, window) <= bound, (window, _most_in_window(log, window))

    # A 429's Retry-After is honoured: the client's retry of the same call (the same path
    # and domain within one pass) comes back no sooner than asked.
    by_call: dict[tuple[int, str, str], list[LoggedRequest]] = {}
    for request in sorted(log, key=lambda r: r.start):
        in_pass = bisect.bisect_right(pass_starts, request.start) - 1
        call = (in_pass, request.path, request.fields.get("domain", ""))
        by_call.setdefault(call, []).append(request)
    waits = [
        later.start - earlier.end
        for calls in by_call.values()
        for earlier, later in itertools.pairwise(calls)
        if earlier.outcome == "rate_limit"
    ]
    assert waits and min(waits) >= 0.95, min(waits)


async def test_every_failure_event_of_a_pass_carries_a_hint(rig: Rig) -> None:
    """Not only each call's own event: the pass's summaries of failures too."""
    rig.faults.update({"rates": {}})
    names = [f"s{i}.example.test" for i in range(4)]
    desired = {
        n: DesiredDomain(name=n, origin="file", place=f"d.txt:{i}") for i, n in enumerate(names, 1)
    }
    rig.faults.update({"queue": ["malformed"]})  # the listing fails
    await reconcile_once(desired, rig.client, rig.store, GuardSettings(), rig.events)
    rig.faults.update({"domains": {names[0]: "malformed"}})  # a call stops the pass
    await reconcile_once(desired, rig.client, rig.store, GuardSettings(), rig.events, workers=1)
    unhinted = [
        e.message
        for e in rig.events.events
        if e.level in (Level.WARNING, Level.ERROR) and not e.details.get("hint")
    ]
    assert unhinted == []
