"""Several daemons on one MariaDB database and one sandbox: exactly one calls Closte, and
ownership survives failover (``kill -9`` of the leader, its lock connection killed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cluster_harness import Fleet, calls, done_lines, doubled_adds
from daemon_harness import lay_out, run_cli
from db_fixtures import add_mapping, mysql_database

from closte_sync.daemon.cluster import default_lock_name
from closte_sync.daemon.settings import ClusterSettings
from closte_sync.sandbox.runner import Sandbox

pytestmark = pytest.mark.mysql
pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]


async def test_two_daemons_only_the_leader_calls_and_status_says_who_leads(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path)
    async with mysql_database() as db:
        fleet = Fleet(site, db)
        try:
            nodes = await fleet.start(2)
            leader = await fleet.current_leader()
            (standby,) = [n for n in nodes if n is not leader]
            for name in ("a.fleet.test", "b.fleet.test"):
                await add_mapping(db, name, blog_id=1)
            await leader.wait_for("add a.fleet.test: done")
            await leader.wait_for("add b.fleet.test: done")
            await _wait_in_sync(fleet, 2)
            adds = calls(closte_sandbox.state.requests, "/adddomainalias")
            assert sorted(r.fields["domain"] for r in adds) == ["a.fleet.test", "b.fleet.test"]
            assert done_lines(standby) == []

            # The shared table holds our ownership for whoever leads next.
            rows = await db.query(
                "SELECT domain, state, added_by_us FROM wp_closte_sync_ledger ORDER BY domain"
            )
            assert [tuple(r) for r in rows] == [
                ("a.fleet.test", "held", 1),
                ("b.fleet.test", "held", 1),
            ]
            standby_socket = fleet.node_env(2 if leader is nodes[0] else 1)
            # A standby reads who leads each time it tries for the lock ([cluster] retry_s):
            # its first try may come before the leader has claimed the shared table.
            async with asyncio.timeout(3 * ClusterSettings().retry_s + 10):
                while True:
                    code, out, err = await run_cli(
                        site,
                        "status",
                        "--json",
                        CLOSTE_SYNC_SOCKET_PATH=standby_socket["CLOSTE_SYNC_SOCKET_PATH"],
                    )
                    assert code in (0, 1), err
                    daemon = json.loads(out)["daemon"]
                    assert daemon["role"] == "standby"
                    if daemon["leader"] is not None:
                        break
                    await asyncio.sleep(0.2)  # polling the standby's answer, not a guess
            assert daemon["leader"]["pid"] == leader.process.pid
        finally:
            await fleet.close()


async def test_kill_9_of_the_leader_hands_over_and_ownership_follows(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path)
    async with mysql_database() as db:
        fleet = Fleet(site, db)
        try:
            await fleet.start(3)
            first = await fleet.current_leader()
            await add_mapping(db, "kept.fleet.test", blog_id=1)
            gone = await add_mapping(db, "gone.fleet.test", blog_id=1)
            await first.wait_for("add kept.fleet.test: done")
            await first.wait_for("add gone.fleet.test: done")

            await first.kill()
            second = await fleet.leader(timeout=15.0)
            await db.execute("DELETE FROM {m} WHERE id = ?", gone)
            # The new leader removes what the old one added, and adds nothing twice.
            await second.wait_for("remove gone.fleet.test: done")
            requests = closte_sandbox.state.requests
            assert doubled_adds(requests, set()) == []
            assert len(calls(requests, "/adddomainalias")) == 2
            assert set(site.held()) == {"kept.fleet.test"}
        finally:
            await fleet.close()


async def test_a_leader_whose_lock_connection_is_killed_stops_within_one_call(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path)
    async with mysql_database() as db:
        # One call at a time, slowly, so the batch is still going when the lock is lost.
        slow = {"CLOSTE_SYNC_CLOSTE_RATE_PER_SECOND": "4", "CLOSTE_SYNC_CLOSTE_CONCURRENCY": "1"}
        fleet = Fleet(site, db, extra_env=slow)
        try:
            await fleet.start(2)
            leader = await fleet.current_leader()
            names = [f"n{i:02d}.fleet.test" for i in range(12)]
            for name in names:
                await add_mapping(db, name, blog_id=1)
            await leader.wait_for("add n01.fleet.test: done")
            lock = default_lock_name(db.settings())
            ((holder,),) = await db.query("SELECT IS_USED_LOCK(?)", lock)
            await db.execute(f"KILL CONNECTION {int(holder)}")
            stepped = await leader.wait_for("standby: stopped acting")
            after = [line for line in leader.lines[stepped:] if "add " in line and ": done" in line]
            before = [
                line for line in leader.lines[:stepped] if "add " in line and ": done" in line
            ]
            # At most the one call already on the wire finishes after the lock is lost.
            assert len(after) <= 1, after
            assert len(before) < len(names)
            await _wait_in_sync(fleet, len(names))
            assert set(site.held()) == set(names)
            assert doubled_adds(closte_sandbox.state.requests, set()) == []
        finally:
            await fleet.close()


async def _wait_in_sync(fleet: Fleet, count: int) -> None:
    """Until the node that leads logs a pass that finds Closte holding ``count`` in sync."""
    leader = await fleet.current_leader()
    await leader.wait_for(f"Closte holds {count};", "; in sync", timeout=60.0)


async def test_ten_failovers_during_churn_never_double_an_add_nor_touch_a_foreign_alias(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path)
    foreign = "foreign.fleet.test"  # put there by someone else: never ours to remove
    closte_sandbox.state.add_alias(closte_sandbox.api_key, foreign, False)
    async with mysql_database() as db:
        fleet = Fleet(site, db)
        try:
            await fleet.start(3)
            leader = await fleet.current_leader()
            rows: dict[str, int] = {}
            for round_ in range(10):
                mark = len(leader.lines)
                for i in range(3):
                    name = f"r{round_}-{i}.fleet.test"
                    rows[name] = await add_mapping(db, name, blog_id=1)
                if round_ % 2:
                    victim = sorted(rows)[round_ % len(rows)]
                    await db.execute("DELETE FROM {m} WHERE id = ?", rows.pop(victim))
                await leader.wait_for("add r", ": done", start=mark)  # mid-batch
                since = fleet.marks()
                await leader.kill()  # mid-batch, or between passes
                (replacement,) = await fleet.start(1)
                leader = await fleet.leader(since=since | {id(replacement): 0})
            await _wait_in_sync(fleet, len(rows) + 1)
            requests = closte_sandbox.state.requests
            assert doubled_adds(requests, {foreign}) == []
            removed = {r.fields.get("domain") for r in calls(requests, "/deletedomainalias")}
            assert foreign not in removed
            assert set(site.held()) == set(rows) | {foreign}
        finally:
            await fleet.close()
