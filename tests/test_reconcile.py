"""One reconcile pass against the sandbox: the real client, the real store, real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.events import MemorySink
from closte_sync.daemon.reconcile import reconcile_once
from closte_sync.daemon.settings import ClosteSettings, GuardSettings, StoreSettings
from closte_sync.daemon.sources.base import DesiredDomain, SourceProblem, SourceSnapshot
from closte_sync.daemon.store import DomainState, Store, open_store
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
