"""One reconcile pass against the sandbox: the real client, the real store, real sockets."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.events import Level, MemorySink
from closte_sync.daemon.reconcile import Backoff, reconcile_once
from closte_sync.daemon.settings import ClosteSettings, GuardSettings, StoreSettings
from closte_sync.daemon.sources.base import DesiredDomain, SourceProblem, SourceSnapshot
from closte_sync.daemon.store import DomainState, Store, Wish, open_store
from closte_sync.sandbox.runner import Sandbox
from closte_sync.shared.secret import Secret

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

NO_GUARD = GuardSettings(max_remove_share=1.0, min_held=0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=tmp_path / "state.sqlite3"))
    yield opened
    await opened.aclose()


@pytest.fixture
async def closte(closte_sandbox: Sandbox) -> AsyncIterator[ClosteClient]:
    settings = ClosteSettings(
        api_key=Secret(closte_sandbox.api_key),
        base_url=closte_sandbox.api.url,
        rate_per_second=1000,
        retry_budget=0,
    )
    async with ClosteClient(settings) as client:
        yield client


def _want(*names: str) -> dict[str, DesiredDomain]:
    return {
        n: DesiredDomain(name=n, origin="file", place=f"domains.txt:{i}")
        for i, n in enumerate(names, 1)
    }


def _held(sandbox: Sandbox) -> set[str]:
    return set(sandbox.state.held(sandbox.api_key))


async def test_adds_then_holds_steady(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    sink = MemorySink()
    first = await reconcile_once(_want("a.com", "*.b.com"), closte, store, NO_GUARD, sink)
    assert first.plan is not None and first.plan.add == ("*.b.com", "a.com")
    assert all(r.ok for r in first.results)
    assert _held(closte_sandbox) == {"a.com", "*.b.com"}
    entry = await store.ledger.get("a.com")
    assert entry is not None and entry.state is DomainState.HELD and entry.added_by_us

    second = await reconcile_once(_want("a.com", "*.b.com"), closte, store, NO_GUARD, sink)
    assert second.plan is not None and second.plan.empty
    assert second.results == []


async def test_removes_only_what_it_added(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    closte_sandbox.state.add_alias(closte_sandbox.api_key, "theirs.com", wildcard=False)
    await reconcile_once(_want("mine.com"), closte, store, NO_GUARD, MemorySink())
    report = await reconcile_once({}, closte, store, NO_GUARD, MemorySink())
    assert report.adopted == ()
    assert report.plan is not None and report.plan.remove == ("mine.com",)
    assert _held(closte_sandbox) == {"theirs.com"}
    theirs = await store.ledger.get("theirs.com")
    assert theirs is not None and theirs.state is DomainState.ADOPTED


async def test_readds_an_alias_removed_behind_its_back(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    await reconcile_once(_want("a.com"), closte, store, NO_GUARD, MemorySink())
    closte_sandbox.state.remove_alias(closte_sandbox.api_key, "a.com")
    report = await reconcile_once(_want("a.com"), closte, store, NO_GUARD, MemorySink())
    assert report.plan is not None and report.plan.add == ("a.com",)
    assert _held(closte_sandbox) == {"a.com"}


async def test_an_add_cut_short_by_a_crash_is_finished_next_pass(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    # The intent was recorded, then the process died before (or after) the call landed.
    await store.ledger.want("a.com", "file")
    await store.ledger.mark_adding("a.com")
    await store.ledger.want("b.com", "file")
    await store.ledger.mark_adding("b.com")
    closte_sandbox.state.add_alias(closte_sandbox.api_key, "b.com", wildcard=False)
    report = await reconcile_once(_want("a.com", "b.com"), closte, store, NO_GUARD, MemorySink())
    assert report.plan is not None and report.plan.add == ("a.com",)
    assert _held(closte_sandbox) == {"a.com", "b.com"}
    for name in ("a.com", "b.com"):
        entry = await store.ledger.get(name)
        assert entry is not None and entry.state is DomainState.HELD and entry.added_by_us


async def test_the_guard_holds_back_a_mass_removal(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    names = [f"d{i}.com" for i in range(6)]
    guard = GuardSettings(max_remove_share=0.25, min_held=4)
    await reconcile_once(_want(*names), closte, store, guard, MemorySink())
    sink = MemorySink()
    report = await reconcile_once(_want("d0.com"), closte, store, guard, sink)
    assert report.plan is not None and report.plan.remove == ()
    assert report.plan.refused_removals is not None
    assert _held(closte_sandbox) == set(names)
    await sink.wait_for(lambda e: e.kind == "guard", timeout=1)


async def test_a_failed_list_changes_nothing(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    closte_sandbox.api.faults.update({"queue": ["server_error"]})
    report = await reconcile_once(_want("a.com"), closte, store, NO_GUARD, MemorySink())
    assert report.error is not None and "server-error" in report.error
    assert report.plan is None
    assert _held(closte_sandbox) == set()


async def test_an_unreadable_source_keeps_its_domains_and_the_others_go_on(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    from_file = {n: DesiredDomain(name=n, origin="file") for n in ("f1.com", "f2.com")}
    from_db = {n: DesiredDomain(name=n, origin="database") for n in ("d1.com", "d2.com")}
    await reconcile_once({**from_file, **from_db}, closte, store, NO_GUARD, MemorySink())
    # The file went missing (no last good set after a restart) and d2 left the database.
    missing = SourceSnapshot(
        source="domains-file",
        domains={},
        healthy=False,
        problems=(SourceProblem("/etc/closte-sync/domains.txt", "no domains file here"),),
    )
    sink = MemorySink()
    report = await reconcile_once(
        {"d1.com": from_db["d1.com"]}, closte, store, NO_GUARD, sink, unhealthy=[missing]
    )
    assert report.plan is not None and report.plan.remove == ("d2.com",)
    assert report.held_removals == ("f1.com", "f2.com")
    assert _held(closte_sandbox) == {"f1.com", "f2.com", "d1.com"}
    event = await sink.wait_for(lambda e: e.kind == "guard", timeout=1)
    assert "domains-file" in event.message and "no domains file here" in event.message


# -- refusals, backoff, account-wide failures, release, odd lists, a steady pass ------------

OTHER_APPLICATION = "another-application-key"


class Clock:
    """A wall clock the test moves: backoff deadlines are compared against it."""

    def __init__(self, at: float = 1_000_000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _sent(sandbox: Sandbox, start: int, path: str) -> list[str]:
    """Domains of the ``path`` requests the sandbox received from log index ``start``."""
    return [r.fields.get("domain", "") for r in sandbox.api.log[start:] if r.path.endswith(path)]


async def test_a_refused_add_is_not_sent_again_until_retried_or_changed(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    closte_sandbox.state.add_alias(OTHER_APPLICATION, "x.com", wildcard=False)
    sink = MemorySink()
    first = await reconcile_once(_want("x.com", "a.com"), closte, store, NO_GUARD, sink)
    entry = await store.ledger.get("x.com")
    assert entry is not None and entry.state is DomainState.REFUSED and not entry.added_by_us
    assert entry.refusal == "domain-taken"
    assert [r.domain for r in first.failures] == ["x.com"]
    event = await sink.wait_for(lambda e: e.kind == "domain-x.com", timeout=1)
    assert event.details["hint"] == "closte-domain-taken" and "retry" in event.message

    mark = len(closte_sandbox.api.log)
    second = await reconcile_once(_want("x.com", "a.com"), closte, store, NO_GUARD, sink)
    assert second.refused == ("x.com",)
    assert _sent(closte_sandbox, mark, "/adddomainalias") == []

    await store.ledger.retry("x.com")
    mark = len(closte_sandbox.api.log)
    await reconcile_once(_want("x.com", "a.com"), closte, store, NO_GUARD, sink)
    assert _sent(closte_sandbox, mark, "/adddomainalias") == ["x.com"]

    # Leaving the desired set and coming back is a fresh intent: sent again.
    await reconcile_once(_want("a.com"), closte, store, NO_GUARD, sink)
    gone = await store.ledger.get("x.com")
    assert gone is not None and gone.state is DomainState.REMOVED
    mark = len(closte_sandbox.api.log)
    await reconcile_once(_want("x.com", "a.com"), closte, store, NO_GUARD, sink)
    assert _sent(closte_sandbox, mark, "/adddomainalias") == ["x.com"]
    assert _sent(closte_sandbox, 0, "/deletedomainalias") == []
    assert "x.com" in closte_sandbox.state.held(OTHER_APPLICATION)


async def test_a_transient_failure_defers_only_its_domain(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    clock = Clock()
    closte_sandbox.api.faults.update({"domains": {"b.com": {"kind": "server_error", "times": 1}}})
    wanted = _want("a.com", "b.com", "c.com")
    first = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink(), now=clock)
    assert [r.domain for r in first.failures] == ["b.com"]
    assert _held(closte_sandbox) == {"a.com", "c.com"}
    entry = await store.ledger.get("b.com")
    assert entry is not None and entry.state is DomainState.WANTED and entry.failures == 1
    assert entry.retry_at is not None and entry.retry_at > clock.at

    clock.at += 1
    mark = len(closte_sandbox.api.log)
    second = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink(), now=clock)
    assert second.deferred == ("b.com",)
    assert _sent(closte_sandbox, mark, "/adddomainalias") == []
    assert not second.in_sync

    # Once its time has come it is sent again and lands.
    clock.at = entry.retry_at + 1
    third = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink(), now=clock)
    assert [r.domain for r in third.results] == ["b.com"] and third.results[0].ok
    assert _held(closte_sandbox) == {"a.com", "b.com", "c.com"}


async def test_with_no_backoff_a_transient_failure_is_sent_again_next_pass(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    clock = Clock()
    no_wait = Backoff(base_s=0.0, max_s=0.0)
    closte_sandbox.api.faults.update({"domains": {"b.com": {"kind": "rate_limit", "times": 1}}})
    closte_sandbox.api.faults.update({"retry_after": "0"})
    wanted = _want("a.com", "b.com")
    first = await reconcile_once(
        wanted, closte, store, NO_GUARD, MemorySink(), backoff=no_wait, now=clock
    )
    assert [r.domain for r in first.failures] == ["b.com"]
    clock.at += 1
    second = await reconcile_once(
        wanted, closte, store, NO_GUARD, MemorySink(), backoff=no_wait, now=clock
    )
    assert second.deferred == () and [r.domain for r in second.results] == ["b.com"]
    assert second.in_sync
    assert _held(closte_sandbox) == {"a.com", "b.com"}
    entry = await store.ledger.get("b.com")
    assert entry is not None and entry.added_by_us and entry.failures == 0


async def test_an_account_wide_failure_stops_the_rest_of_the_pass(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    names = [f"d{i}.com" for i in range(6)]
    # Closte answers 403 (the key may not do this) to the first add: every other would too.
    closte_sandbox.api.faults.update({"domains": {"d0.com": "permission"}})
    sink = MemorySink()
    mark = len(closte_sandbox.api.log)
    report = await reconcile_once(_want(*names), closte, store, NO_GUARD, sink, workers=1)
    assert report.stopped is not None and "permission-denied" in report.stopped
    assert _sent(closte_sandbox, mark, "/adddomainalias") == ["d0.com"]
    assert _held(closte_sandbox) == set()
    event = await sink.wait_for(lambda e: "not sent this pass" in e.message, timeout=1)
    assert event.message.startswith("5 call(s)")
    untouched = await store.ledger.get("d1.com")
    assert untouched is not None and untouched.state is DomainState.WANTED
    assert untouched.attempts == 0 and untouched.retry_at is None


async def test_release_by_plan_id_removes_exactly_the_held_removals(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    names = [f"d{i}.com" for i in range(8)]
    guard = GuardSettings(max_remove_share=0.25, min_held=4)
    await reconcile_once(_want(*names), closte, store, guard, MemorySink())

    held = await reconcile_once(_want("d0.com", "d1.com"), closte, store, guard, MemorySink())
    assert held.plan is not None and held.plan.held is not None
    first_id = held.plan.held.id
    assert held.plan.held.domains == tuple(names[2:])

    # The sources shrank further before the operator released: a new plan, held again.
    shrunk = await reconcile_once(
        _want("d0.com"), closte, store, guard, MemorySink(), release=first_id
    )
    assert shrunk.plan is not None and shrunk.plan.held is not None
    assert shrunk.plan.held.id != first_id and shrunk.plan.remove == ()
    assert _held(closte_sandbox) == set(names)

    released = await reconcile_once(
        _want("d0.com", "d1.com"), closte, store, guard, MemorySink(), release=first_id
    )
    assert released.plan is not None and released.plan.held is None
    assert released.plan.remove == tuple(names[2:])
    assert _held(closte_sandbox) == {"d0.com", "d1.com"}


async def test_a_mapping_deleted_while_the_plugin_holds_it_again_is_not_removed(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    """The rule: closte-sync removes only an alias whose presence on Closte comes from its
    own accepted add. Once its add was undone by its own remove, a later copy of the name
    on Closte (here the plugin's add, made while our list failed) belongs to whoever put it
    there, even though the ledger still remembers the name."""
    key = closte_sandbox.api_key
    await reconcile_once(_want("x.com"), closte, store, NO_GUARD, MemorySink())
    await reconcile_once({}, closte, store, NO_GUARD, MemorySink())
    assert _held(closte_sandbox) == set()
    # The mapping comes back; the plugin adds it; our list fails this pass.
    closte_sandbox.state.add_alias(key, "x.com", wildcard=False)
    closte_sandbox.api.faults.update({"queue": ["server_error"]})
    failed = await reconcile_once(_want("x.com"), closte, store, NO_GUARD, MemorySink())
    assert failed.error is not None
    # The mapping is deleted again while Closte holds x.com.
    report = await reconcile_once({}, closte, store, NO_GUARD, MemorySink())
    assert report.error is None and report.plan is not None and report.plan.remove == ()
    assert _held(closte_sandbox) == {"x.com"}
    entry = await store.ledger.get("x.com")
    assert entry is not None and entry.state is DomainState.ADOPTED and not entry.added_by_us
    deletes = _sent(closte_sandbox, 0, "/deletedomainalias")
    assert deletes == ["x.com"]  # only the first removal, of our own add


async def test_an_unreadable_list_changes_nothing_and_says_so(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    key = closte_sandbox.api_key
    await reconcile_once(_want("a.com"), closte, store, NO_GUARD, MemorySink())
    closte_sandbox.state.add_alias(key, "not a domain!", wildcard=False)
    mark = len(closte_sandbox.api.log)
    sink = MemorySink()
    report = await reconcile_once(_want("b.com"), closte, store, NO_GUARD, sink)
    assert report.error is not None and "not a domain!" in report.error
    assert report.plan is None and report.results == []
    assert [r.path for r in closte_sandbox.api.log[mark:]] == ["/getdomains"]
    assert _held(closte_sandbox) == {"a.com", "not a domain!"}
    event = await sink.wait_for(lambda e: e.level is Level.ERROR, timeout=1)
    assert "unreadable-list" in event.message and "not a domain!" in event.message


@pytest.mark.parametrize("kind", ["malformed", "empty", "html", "permission"])
async def test_a_failed_list_of_any_kind_sends_nothing(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store, kind: str
) -> None:
    await reconcile_once(_want("a.com"), closte, store, NO_GUARD, MemorySink())
    closte_sandbox.api.faults.update({"queue": [kind]})
    mark = len(closte_sandbox.api.log)
    sink = MemorySink()
    report = await reconcile_once(_want("b.com"), closte, store, NO_GUARD, sink)
    assert report.error is not None and report.plan is None
    assert [r.path for r in closte_sandbox.api.log[mark:]] == ["/getdomains"]
    assert _held(closte_sandbox) == {"a.com"}
    await sink.wait_for(lambda e: e.level is Level.ERROR and "listing" in e.message, timeout=1)
    entry = await store.ledger.get("a.com")
    assert entry is not None and entry.state is DomainState.HELD and entry.added_by_us


async def test_a_steady_pass_over_2000_domains_writes_nothing(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store, tmp_path: Path
) -> None:
    key = closte_sandbox.api_key
    names = [f"site{i:04}.example.com" for i in range(2000)]
    for name in names[10:]:
        closte_sandbox.state.add_alias(key, name, wildcard=False)
    wanted = _want(*names)
    first = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink())
    assert len(first.results) == 10 and all(r.ok for r in first.results)

    watcher = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        mark = len(closte_sandbox.api.log)
        second = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink())
        after = watcher.execute("PRAGMA data_version").fetchone()[0]
    finally:
        watcher.close()
    assert second.in_sync and second.results == []
    assert [r.path for r in closte_sandbox.api.log[mark:]] == ["/getdomains"]
    assert after == before, "a steady pass committed a change to the ledger"
    wishes = {n: Wish("file", "domains.txt") for n in names}
    settled = await store.ledger.settle(wishes, set(names))
    assert settled.written == 0 and len(settled.entries) == 2000


@pytest.mark.parametrize("fault", ["rate_limit", "permission", "refused"])
async def test_an_add_closte_answered_no_to_never_claims_a_later_hand_made_alias(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store, fault: str
) -> None:
    """Closte's answer said the add was not made: if the alias then appears (the admin adds
    it in the dashboard), it is the admin's, and closte-sync never removes it."""
    key = closte_sandbox.api_key
    clock = Clock()
    if fault == "refused":
        closte_sandbox.state.add_alias(OTHER_APPLICATION, "x.com", wildcard=False)
    else:
        closte_sandbox.api.faults.update({"domains": {"x.com": {"kind": fault, "times": 1}}})
    first = await reconcile_once(_want("x.com"), closte, store, NO_GUARD, MemorySink(), now=clock)
    assert [r.domain for r in first.failures] == ["x.com"]
    if fault == "refused":
        closte_sandbox.state.remove_alias(OTHER_APPLICATION, "x.com")
        await store.ledger.retry("x.com")
    closte_sandbox.state.add_alias(key, "x.com", wildcard=False)
    clock.at += 3600
    await reconcile_once(_want("x.com"), closte, store, NO_GUARD, MemorySink(), now=clock)
    entry = await store.ledger.get("x.com")
    assert entry is not None and entry.state is DomainState.HELD and not entry.added_by_us
    clock.at += 60
    report = await reconcile_once({}, closte, store, NO_GUARD, MemorySink(), now=clock)
    assert report.plan is not None and report.plan.remove == ()
    assert _held(closte_sandbox) == {"x.com"}


async def test_a_dry_run_plans_what_the_real_pass_then_does(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store, tmp_path: Path
) -> None:
    key = closte_sandbox.api_key
    await reconcile_once(_want("x.com", "y.com"), closte, store, NO_GUARD, MemorySink())
    await reconcile_once(_want("y.com"), closte, store, NO_GUARD, MemorySink())
    # Someone else puts x.com back; z.com is new; y.com was removed in the dashboard.
    closte_sandbox.state.add_alias(key, "x.com", wildcard=False)
    closte_sandbox.state.remove_alias(key, "y.com")
    wanted = _want("y.com", "z.com")
    watcher = sqlite3.connect(tmp_path / "state.sqlite3")
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        mark = len(closte_sandbox.api.log)
        dry = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink(), dry_run=True)
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
    finally:
        watcher.close()
    assert [r.path for r in closte_sandbox.api.log[mark:]] == ["/getdomains"]
    real = await reconcile_once(wanted, closte, store, NO_GUARD, MemorySink())
    assert dry.plan is not None and real.plan is not None
    assert (dry.plan.add, dry.plan.remove) == (real.plan.add, real.plan.remove)
    assert real.plan.add == ("y.com", "z.com") and real.plan.remove == ()
    assert _held(closte_sandbox) == {"x.com", "y.com", "z.com"}


async def test_a_delete_that_landed_before_a_crash_is_not_reported_as_missing(
    closte_sandbox: Sandbox, closte: ClosteClient, store: Store
) -> None:
    await reconcile_once(_want("a.com", "b.com"), closte, store, NO_GUARD, MemorySink())
    # The intent of removing a.com is recorded, the delete lands, then the process dies.
    await store.ledger.mark_removing("a.com")
    assert (await closte.remove_alias("a.com")).ok
    sink = MemorySink()
    mark = len(closte_sandbox.api.log)
    report = await reconcile_once(_want("b.com"), closte, store, NO_GUARD, sink)
    assert report.missing == () and report.results == []
    assert [r.path for r in closte_sandbox.api.log[mark:]] == ["/getdomains"]
    assert not [e for e in sink.events if "no longer lists" in e.message]
    entry = await store.ledger.get("a.com")
    assert entry is not None and entry.state is DomainState.REMOVED
