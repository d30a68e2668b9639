"""The domain ledger (intent before side effects), stages with their check history, and
live settings."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store import (
    DomainOrigin,
    DomainState,
    LedgerTransitionError,
    Stage,
    Store,
    StoreError,
    Wish,
    open_store,
)
from closte_sync.daemon.store.stages import CheckWrite, StageUpdate
from closte_sync.shared.domains import DomainError


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=tmp_path / "state.sqlite3"))
    yield opened
    await opened.aclose()


# -- ledger ---------------------------------------------------------------------------


async def _ours(store: Store, name: str, origin: str = "file") -> None:
    await store.ledger.want(name, origin)
    await store.ledger.mark_adding(name)
    await store.ledger.confirm_added(name)


async def test_a_held_alias_closte_no_longer_lists_is_wanted_again(store: Store) -> None:
    await _ours(store, "gone.example.com")
    wish = {"gone.example.com": Wish("file")}
    settled = await store.ledger.settle(wish, [])
    assert settled.missing == ["gone.example.com"]
    entry = settled.entries["gone.example.com"]
    assert (entry.state, entry.attempts) == ("wanted", 0)
    assert (await store.ledger.mark_adding("gone.example.com")).state is DomainState.ADDING


async def test_an_add_is_ours_only_once_closte_accepts_it(store: Store) -> None:
    wanted = await store.ledger.want(
        "Shop.Example.COM.", DomainOrigin.DATABASE, place="wp#7", now=10
    )
    assert (wanted.domain, wanted.state, wanted.added_by_us) == (
        "shop.example.com",
        "wanted",
        False,
    )
    assert (wanted.first_seen, wanted.place, wanted.attempts) == (10, "wp#7", 0)

    adding = await store.ledger.mark_adding("shop.example.com", now=11)
    assert (adding.state, adding.added_by_us, adding.attempts) == ("adding", False, 1)
    deferred = await store.ledger.defer("shop.example.com", "HTTP 502", 100.0, now=12)
    assert (deferred.state, deferred.failures, deferred.retry_at) == ("wanted", 1, 100.0)
    assert deferred.last_error == "HTTP 502" and not deferred.added_by_us
    retried = await store.ledger.mark_adding("shop.example.com", now=13)
    assert (retried.attempts, retried.retry_at) == (2, None)

    held = await store.ledger.confirm_added("shop.example.com", now=14)
    assert (held.state, held.added_by_us, held.attempts, held.failures) == ("held", True, 0, 0)
    assert (held.last_error, held.last_change, held.first_seen) == (None, 14, 10)
    assert await store.ledger.unfinished() == []


async def test_a_refused_add_is_final_until_retried_or_wanted_afresh(store: Store) -> None:
    await store.ledger.want("taken.example.com", "database")
    await store.ledger.mark_adding("taken.example.com")
    refused = await store.ledger.mark_refused(
        "taken.example.com", "domain-taken", "already in use by another application"
    )
    assert (refused.state, refused.refusal, refused.added_by_us) == (
        "refused",
        "domain-taken",
        False,
    )
    # Still wanted: a settle keeps it refused (no resend).
    settled = await store.ledger.settle({"taken.example.com": Wish("database")}, [])
    assert settled.entries["taken.example.com"].state is DomainState.REFUSED
    # An operator's retry makes it wanted again.
    retried = await store.ledger.retry("taken.example.com")
    assert (retried.state, retried.refusal) == ("wanted", None)
    await store.ledger.mark_adding("taken.example.com")
    await store.ledger.mark_refused("taken.example.com", "domain-taken", "taken")
    # Leaving the desired set and coming back is a new intent too.
    gone = await store.ledger.settle({}, [])
    assert gone.entries["taken.example.com"].state is DomainState.REMOVED
    back = await store.ledger.settle({"taken.example.com": Wish("database")}, [])
    assert (back.entries["taken.example.com"].state, back.entries["taken.example.com"].refusal) == (
        "wanted",
        None,
    )


@pytest.mark.parametrize("answer", ["refused", "not-made", "in-doubt"])
async def test_an_alias_that_appears_after_an_add_failed_is_ours_only_if_it_may_have_landed(
    store: Store, answer: str
) -> None:
    name = "late.example.com"
    await store.ledger.want(name, "file")
    await store.ledger.mark_adding(name)
    if answer == "refused":
        after = await store.ledger.mark_refused(name, "domain-taken", "taken")
        await store.ledger.retry(name)
    else:
        after = await store.ledger.defer(name, "failed", 0.0, not_made=answer == "not-made")
    assert after.attempts == (1 if answer == "in-doubt" else 0)
    # Then the alias shows up on Closte (the dashboard, or our add after all).
    settled = await store.ledger.settle({name: Wish("file")}, [name])
    entry = settled.entries[name]
    assert entry.state is DomainState.HELD
    assert entry.added_by_us is (answer == "in-doubt")
    assert settled.landed == ([name] if answer == "in-doubt" else [])


async def test_remove_cycle_and_wanting_it_again(store: Store) -> None:
    await store.ledger.want("*.Example.org", "file", place="domains.txt")
    await store.ledger.mark_adding("*.example.org")
    held = await store.ledger.confirm_added("*.example.org")
    assert held.wildcard and held.domain == "*.example.org"
    removing = await store.ledger.mark_removing("*.example.org")
    assert (removing.state, removing.attempts) == ("removing", 1)
    removed = await store.ledger.mark_removed("*.example.org")
    assert removed.state == "removed" and removed.added_by_us  # history of what we added

    again = await store.ledger.want("*.example.org", "database", place="wp#9")
    assert (again.state, again.origin, again.place) == ("wanted", "database", "wp#9")
    # Unwanted before any call went out: straight to removed, nothing to delete.
    dropped = await store.ledger.mark_removed("*.example.org")
    assert (dropped.state, dropped.attempts) == ("removed", 0)


async def test_a_domain_we_did_not_add_is_not_ours_to_remove(store: Store) -> None:
    settled = await store.ledger.settle({}, ["legacy.example.net"])
    assert settled.adopted == ["legacy.example.net"]
    adopted = settled.entries["legacy.example.net"]
    assert (adopted.state, adopted.origin, adopted.added_by_us) == ("adopted", "adopted", False)
    with pytest.raises(LedgerTransitionError, match=r"legacy\.example\.net: .*did not add it"):
        await store.ledger.mark_removing("legacy.example.net")
    assert (await store.ledger.get("legacy.example.net")).state == "adopted"  # type: ignore[union-attr]
    forced = await store.ledger.mark_removing("legacy.example.net", force=True)
    assert forced.state == "removing"


async def test_settle_sorts_out_what_closte_lists(store: Store) -> None:
    # An add we sent whose answer we never saw, now on Closte's list: ours.
    await store.ledger.want("landed.example.com", "site")
    await store.ledger.mark_adding("landed.example.com")
    # Wanted, never sent, but on Closte already: held, not ours.
    await store.ledger.want("already.example.com", "file")
    # Ours and still listed: unchanged.
    await _ours(store, "held.example.com")
    wishes = {n: Wish("file") for n in ("already.example.com", "held.example.com")}
    wishes["landed.example.com"] = Wish("site")
    listed = ["landed.example.com", "already.example.com", "held.example.com"]
    settled = await store.ledger.settle(wishes, listed)
    e = settled.entries
    assert (e["landed.example.com"].state, e["landed.example.com"].added_by_us) == ("held", True)
    assert settled.landed == ["landed.example.com"]
    assert (e["already.example.com"].state, e["already.example.com"].added_by_us) == (
        "held",
        False,
    )
    assert (e["held.example.com"].state, e["held.example.com"].added_by_us) == ("held", True)
    # Nothing new: a second settle writes nothing.
    assert (await store.ledger.settle(wishes, listed)).written == 0


async def test_the_sequence_that_once_broke_every_pass(store: Store) -> None:
    """Added, removed, wanted again while the list failed, unwanted again while Closte
    holds it: the ledger stays consistent and the domain is not ours to remove."""
    await _ours(store, "x.com")
    await store.ledger.mark_removing("x.com")
    await store.ledger.mark_removed("x.com")
    await store.ledger.settle({"x.com": Wish("database")}, None)  # the list failed
    settled = await store.ledger.settle({}, ["x.com"])
    entry = settled.entries["x.com"]
    assert (entry.state, entry.added_by_us) == ("adopted", False)


@pytest.mark.parametrize(
    ("setup", "step", "current"),
    [
        ([], "mark_held", None),
        (["want"], "mark_removing", "wanted"),
        (["want", "mark_adding", "confirm_added"], "mark_removed", "held"),
        (
            ["want", "mark_adding", "confirm_added", "mark_removing", "mark_removed"],
            "mark_held",
            "removed",
        ),
    ],
)
async def test_steps_the_state_does_not_allow_are_refused_by_name(
    store: Store, setup: list[str], step: str, current: str | None
) -> None:
    name = "step.example.com"
    for earlier in setup:
        if earlier == "want":
            await store.ledger.want(name, "file")
        else:
            await getattr(store.ledger, earlier)(name)
    before = await store.ledger.get(name)
    with pytest.raises(LedgerTransitionError) as caught:
        await getattr(store.ledger, step)(name)
    assert caught.value.domain == name and caught.value.current == current
    assert name in str(caught.value)
    assert await store.ledger.get(name) == before  # nothing changed


async def test_names_are_stored_in_ascii_and_bad_names_rejected(store: Store) -> None:
    entry = await store.ledger.want("Bücher.Example", "file")
    assert entry.domain == "xn--bcher-kva.example"
    assert await store.ledger.get("bücher.example") == entry
    with pytest.raises(DomainError, match="URL"):
        await store.ledger.want("https://bad.example.com/", "file")
    with pytest.raises(ValueError):
        await store.ledger.want("ok.example.com", "somewhere")


async def test_entries_by_state(store: Store) -> None:
    for name in ("c.example.com", "a.example.com", "b.example.com"):
        await store.ledger.want(name, "file")
    await store.ledger.mark_adding("b.example.com")
    await store.ledger.settle(
        {n: Wish("file") for n in ("a.example.com", "b.example.com", "c.example.com")}, None
    )
    assert [e.domain for e in await store.ledger.unfinished()] == ["b.example.com"]
    # Nobody wants them any more and Closte holds none of them (its add did not land).
    await store.ledger.settle({}, ["z.example.com"])
    assert [e.domain for e in await store.ledger.entries()] == [
        "a.example.com",
        "b.example.com",
        "c.example.com",
        "z.example.com",
    ]
    assert [e.domain for e in await store.ledger.entries([DomainState.REMOVED])] == [
        "a.example.com",
        "b.example.com",
        "c.example.com",
    ]
    assert [e.domain for e in await store.ledger.unfinished()] == []
    assert await store.ledger.entries([]) == []


_CRASH_AFTER_INTENT = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from closte_sync.daemon.settings import StoreSettings
    from closte_sync.daemon.store import open_store

    async def main() -> None:
        store = await open_store(StoreSettings(path=Path(sys.argv[1])))
        await store.ledger.want("crash.example.com", "database")
        await store.ledger.mark_adding("crash.example.com")
        await store.ledger.confirm_added("crash.example.com")
        await store.ledger.mark_removing("crash.example.com")
        await store.ledger.want("new.example.com", "database")
        await store.ledger.mark_adding("new.example.com")
        print("intent recorded", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # dies before the API call and before aclose

    asyncio.run(main())
    """
)


async def test_intent_survives_kill_9_so_the_next_run_resumes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CRASH_AFTER_INTENT,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == -signal.SIGKILL, err.decode()
    assert out.decode().strip() == "intent recorded"
    # It really died without a clean close: the write-ahead log is still there.
    assert await asyncio.to_thread(Path(f"{path}-wal").exists)

    async with await open_store(StoreSettings(path=path)) as store:
        resume = {e.domain: e for e in await store.ledger.unfinished()}
        assert set(resume) == {"crash.example.com", "new.example.com"}
        assert resume["new.example.com"].state == "adding"
        # Not ours yet: only Closte's yes (or its list) makes it so.
        assert not resume["new.example.com"].added_by_us
        assert resume["new.example.com"].attempts == 1
        assert resume["crash.example.com"].state == "removing"
        # Resuming is the same step again, counted as a second attempt.
        assert (await store.ledger.mark_adding("new.example.com")).attempts == 2
    assert os.stat(path).st_mode & 0o077 == 0


# -- stages and check history -----------------------------------------------------------


async def test_stage_needs_a_ledger_row(store: Store) -> None:
    with pytest.raises(StoreError, match=r"unknown\.example\.com: no stage without a ledger row"):
        await store.stages.set_stage("unknown.example.com", StageUpdate(Stage.CHECKING_DNS, 0, 1.0))


async def test_checks_move_the_stage_and_keep_their_history(store: Store) -> None:
    name = "s.example.com"
    await store.ledger.want(name, "database")
    start = await store.stages.set_stage(name, StageUpdate("checking-dns", 0, 100.0), now=50)
    assert (start.stage, start.tries, start.stage_since, start.last_check_at) == (
        Stage.CHECKING_DNS,
        0,
        50,
        None,
    )

    miss = await store.stages.record_check(
        name,
        "dns",
        ok=False,
        summary="no A record",
        details={"answers": []},
        update=StageUpdate(Stage.CHECKING_DNS, 1, 400.0),
        now=100,
    )
    assert miss is not None
    assert (miss.tries, miss.stage_since, miss.last_check_at, miss.next_check_at) == (
        1,
        50,
        100,
        400,
    )

    hit = await store.stages.record_check(
        name,
        "dns",
        ok=True,
        summary="A 203.0.113.5",
        details={"answers": ["203.0.113.5"]},
        update=StageUpdate(Stage.CHECKING_SSL_CERT, 0, 700.0),
        now=400,
    )
    assert hit is not None and (hit.stage, hit.stage_since, hit.last_summary) == (
        Stage.CHECKING_SSL_CERT,
        400,
        "A 203.0.113.5",
    )
    api = await store.stages.record_check(name, "api", ok=True, summary="added", now=401)
    assert api is not None and api.stage is Stage.CHECKING_SSL_CERT and api.last_check_at == 401

    history = await store.stages.history(name)
    assert [(c.kind, c.ok, c.summary) for c in history] == [
        ("api", True, "added"),
        ("dns", True, "A 203.0.113.5"),
        ("dns", False, "no A record"),
    ]
    assert history[1].details == {"answers": ["203.0.113.5"]}

    done = await store.stages.record_check(
        name, "tls", ok=True, summary="valid", update=StageUpdate(Stage.DONE, 0, None), now=800
    )
    assert done is not None and done.next_check_at is None
    assert await store.stages.due(now=10**10) == []


async def test_many_checks_are_recorded_at_once_and_a_domain_that_left_is_skipped(
    store: Store,
) -> None:
    for name in ("a.example.com", "b.example.com", "gone.example.com"):
        await store.ledger.want(name, "file")
        await store.stages.set_stage(name, StageUpdate(Stage.CHECKING_DNS, 2, 10.0), now=5)
    # gone.example.com leaves while its check runs: its stage row is dropped.
    await store.stages.track({"a.example.com": Stage.CHECKING_DNS, "b.example.com": Stage.DONE})
    kept = await store.stages.record_many(
        [
            CheckWrite(
                "a.example.com",
                "dns",
                True,
                "points",
                {"answers": ["203.0.113.5"]},
                StageUpdate(Stage.CHECKING_SSL_CERT, 0, 20.0),
            ),
            CheckWrite("b.example.com", "dns", False, "no A record", {}, None),
            CheckWrite(
                "gone.example.com",
                "dns",
                True,
                "points",
                {},
                StageUpdate(Stage.CHECKING_SSL_CERT, 0, 20.0),
            ),
        ],
        now=15,
    )
    assert kept == 2
    a = await store.stages.get("a.example.com")
    assert a is not None
    assert (a.stage, a.tries, a.next_check_at, a.stage_since, a.last_check_at) == (
        Stage.CHECKING_SSL_CERT,
        0,
        20.0,
        15,
        15,
    )
    b = await store.stages.get("b.example.com")
    # No move: the stage stays, the check's time and summary are noted.
    assert b is not None
    assert (b.stage, b.tries, b.stage_since, b.last_check_at, b.last_summary) == (
        Stage.CHECKING_DNS,
        2,
        5,
        15,
        "no A record",
    )
    assert await store.stages.get("gone.example.com") is None
    assert await store.stages.history("gone.example.com") == []
    assert [c.details for c in await store.stages.history("a.example.com")] == [
        {"answers": ["203.0.113.5"]}
    ]
    assert await store.stages.record_many([]) == 0


async def test_due_lists_overdue_domains_first(store: Store) -> None:
    for name, when in (
        ("late.example.com", 5.0),
        ("later.example.com", 50.0),
        ("soon.example.com", 1.0),
    ):
        await store.ledger.want(name, "file")
        await store.stages.set_stage(name, StageUpdate(Stage.CHECKING_DNS, 0, when))
    due = await store.stages.due(now=10.0)
    assert [e.domain for e in due] == ["soon.example.com", "late.example.com"]
    assert [e.domain for e in await store.stages.due(now=10.0, limit=1)] == ["soon.example.com"]
    assert len(await store.stages.all()) == 3


async def test_bad_stage_and_check_kind_are_rejected(store: Store) -> None:
    await store.ledger.want("x.example.com", "file")
    with pytest.raises(ValueError, match="checking-everything"):
        await store.stages.set_stage("x.example.com", StageUpdate("checking-everything", 0, None))
    with pytest.raises(ValueError, match="smtp"):
        await store.stages.record_check("x.example.com", "smtp", ok=True, summary="")


# -- live settings ----------------------------------------------------------------------


async def test_settings_remember_value_who_and_when(store: Store) -> None:
    assert await store.settings.get("checks.interval_s") is None
    first = await store.settings.set("checks.interval_s", 120, set_by="admin (tui)", now=5)
    assert (first.value, first.set_by, first.set_at) == (120, "admin (tui)", 5)
    await store.settings.set("checks.interval_s", 60, set_by="root (cli)", now=6)
    await store.settings.set("guard.override", {"until": 99, "reason": "migration"}, set_by="root")
    current = await store.settings.get("checks.interval_s")
    assert current is not None and (current.value, current.set_by) == (60, "root (cli)")
    assert [s.key for s in await store.settings.all()] == ["checks.interval_s", "guard.override"]
    assert (await store.settings.get("guard.override")).value["reason"] == "migration"  # type: ignore[union-attr]
    assert await store.settings.delete("checks.interval_s") is True
    assert await store.settings.delete("checks.interval_s") is False


async def test_settings_refuse_bad_keys_and_values_by_name(store: Store) -> None:
    with pytest.raises(StoreError, match="'Checks Interval'"):
        await store.settings.set("Checks Interval", 1, set_by="x")
    with pytest.raises(StoreError, match=r"checks\.interval_s: the value is not JSON"):
        await store.settings.set("checks.interval_s", object(), set_by="x")
    with pytest.raises(StoreError, match="not JSON"):
        await store.settings.set("checks.interval_s", float("nan"), set_by="x")
    assert await store.settings.all() == []


# -- any sequence of steps keeps the ledger's promises -----------------------------------

_STEPS = (
    "want",
    "listed",
    "unlisted",
    "unwanted",
    "mark_adding",
    "confirm_added",
    "mark_refused",
    "defer",
    "retry",
    "mark_removing",
    "mark_removed",
)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from(_STEPS), max_size=14))
async def test_any_sequence_of_steps_keeps_the_ledgers_promises(
    tmp_path_factory: pytest.TempPathFactory, steps: list[str]
) -> None:
    path = tmp_path_factory.mktemp("ledger") / "state.sqlite3"
    name = "prop.example.com"
    async with await open_store(StoreSettings(path=path)) as store:
        sent_add = False  # an add went out for the current intent
        for step in steps:
            before = await store.ledger.get(name)
            wanted = before is not None and before.state not in ("removed", "adopted")
            try:
                if step == "want":
                    after = await store.ledger.want(name, "database")
                elif step in ("listed", "unlisted", "unwanted"):
                    wish = {} if step == "unwanted" else {name: Wish("database")} if wanted else {}
                    listed = None if step == "unwanted" else [name] if step == "listed" else []
                    got = (await store.ledger.settle(wish, listed)).entries.get(name)
                    if got is None:
                        continue
                    after = got
                elif step == "mark_refused":
                    after = await store.ledger.mark_refused(name, "domain-taken", "taken")
                elif step == "defer":
                    after = await store.ledger.defer(name, "HTTP 502", 1e12)
                else:
                    after = await getattr(store.ledger, step)(name)
            except LedgerTransitionError:
                assert await store.ledger.get(name) == before  # a refused step changes nothing
                continue
            if step == "mark_adding":
                sent_add = True
                assert after.state == "adding" and after.attempts >= 1
            if after.added_by_us and not (before is not None and before.added_by_us):
                # Ownership only from Closte's yes, or its list after we sent an add.
                assert sent_add and step in ("confirm_added", "listed")
            if step == "mark_removing":
                assert after.added_by_us  # never without force unless we added it
            if step == "mark_refused":
                assert not after.added_by_us or (before is not None and before.added_by_us)
            if step.startswith("mark_"):
                assert after.state == step.removeprefix("mark_")
            if before is not None:
                assert after.first_seen == before.first_seen
            if after.attempts == 0:
                sent_add = False
            assert after.unfinished == (after.state in ("adding", "removing"))
