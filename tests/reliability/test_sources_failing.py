"""Sources that fail under a running daemon: the domains file emptied, garbled, deleted or
made unreadable, MariaDB cut off for a minute, the mappings table read back empty. Nothing
is removed without the operator's release, and all recovers when the source does.

Each step waits for the daemon's own line (a pass, a held plan, a source problem); the
sandbox's request log says what was really sent.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import pytest
from daemon_harness import DaemonProcess, Site, lay_out, run_cli
from db_fixtures import MYSQL_HOST, MYSQL_PORT, TcpRelay, add_mapping, mysql_database

from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

# How long MariaDB stays unreachable (the issue asks for 60 s; shorten for a local run).
OUTAGE_S = float(os.environ.get("CLOSTE_SYNC_OUTAGE_S", "60"))
FILE_NAMES = [f"file{i:02}.example.test" for i in range(20)]
DB_NAMES = [f"db{i}.example.test" for i in range(4)]
# The guard acts from 5 held aliases: removing more than a quarter needs a release.
GUARD = {"CLOSTE_SYNC_GUARD_MIN_HELD": "5"}
PLAN = re.compile(r"removals held \(plan (\w+)\)")


def deletes(sandbox: Sandbox, since: int = 0) -> list[str]:
    return [
        r.fields.get("domain", "")
        for r in sandbox.state.requests[since:]
        if r.path.endswith("/deletedomainalias")
    ]


async def in_sync(daemon: DaemonProcess, mark: int, holds: int) -> None:
    await daemon.wait_for("pass:", f"Closte holds {holds};", "; in sync", start=mark, timeout=60)


def restore(site: Site) -> None:
    site.domains_file.write_text("".join(f"{n}\n" for n in FILE_NAMES))


async def test_a_failing_domains_file_never_costs_an_alias(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(
        closte_sandbox,
        tmp_path,
        mappings=[(name, 1) for name in DB_NAMES],
        file_lines=FILE_NAMES,
    )
    everything = set(FILE_NAMES) | set(DB_NAMES)
    daemon = await DaemonProcess.start(site, **GUARD)
    try:
        await in_sync(daemon, 0, len(everything))
        assert site.held() == everything

        # Emptied, then garbled: to the source these read as "no domains", so the guard
        # holds the mass removal back with a plan id.
        plans = []
        for content in (b"", b"\x00\xff\xfe garbage \x80\n<?php die(); ?>\nnot a domain!!\n"):
            mark = len(daemon.lines)
            site.domains_file.write_bytes(content)
            line = daemon.lines[await daemon.wait_for("pass:", "removals held", start=mark)]
            plans.append(PLAN.search(line))
            assert site.held() == everything and deletes(closte_sandbox) == []
            mark = len(daemon.lines)
            restore(site)
            await in_sync(daemon, mark, len(everything))
        assert all(plans)

        # Deleted, then a directory in its place (unreadable; root ignores chmod): the
        # source keeps its last good set; the database's own changes still go ahead.
        for index, (break_it, problem) in enumerate(
            [
                (lambda: site.domains_file.unlink(), "no domains file at"),
                (
                    lambda: (site.domains_file.unlink(), site.domains_file.mkdir()),
                    "cannot read the domains file",
                ),
            ]
        ):
            mark = len(daemon.lines)
            break_it()
            await daemon.wait_for("domains-file", problem, start=mark)
            gone = DB_NAMES[index]
            site.delete_mapping(gone)
            everything.discard(gone)
            await daemon.wait_for(f"remove {gone}: done", start=mark)
            await daemon.wait_for("pass:", f"Closte holds {len(everything)};", start=mark)
            assert site.held() == everything
            mark = len(daemon.lines)
            if site.domains_file.is_dir():
                site.domains_file.rmdir()
            restore(site)
            await in_sync(daemon, mark, len(everything))
        assert sorted(deletes(closte_sandbox)) == sorted(DB_NAMES[:2])

        # Emptied on purpose, and the operator releases the plan: now the file's go.
        sent = len(closte_sandbox.state.requests)
        mark = len(daemon.lines)
        site.domains_file.write_text("")
        line = daemon.lines[await daemon.wait_for("pass:", "removals held", start=mark)]
        found = PLAN.search(line)
        assert found is not None
        assert deletes(closte_sandbox, sent) == []
        code, out, err = await run_cli(site, "release", found.group(1))
        assert code == 0, out + err
        await in_sync(daemon, mark, len(DB_NAMES) - 2)
        assert sorted(deletes(closte_sandbox, sent)) == sorted(FILE_NAMES)
        assert site.held() == set(DB_NAMES[2:])
    finally:
        await daemon.kill()


@pytest.mark.heavy
@pytest.mark.mysql
async def test_mariadb_out_for_a_minute_and_an_empty_mappings_table_remove_nothing(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    db_names = [f"maria{i}.example.test" for i in range(8)]
    file_names = [f"plain{i}.example.test" for i in range(4)]
    site = lay_out(closte_sandbox, tmp_path, file_lines=file_names)
    relay = TcpRelay(MYSQL_HOST, MYSQL_PORT)
    await relay.start()
    async with mysql_database() as db:
        rows = {name: await add_mapping(db, name, blog_id=1) for name in db_names}
        url = f"mysql://root@127.0.0.1:{relay.port}/{db.name}"
        daemon = await DaemonProcess.start(
            site, CLOSTE_SYNC_DATABASE_URL=url, CLOSTE_SYNC_DATABASE_POLL_S="0.2", **GUARD
        )
        try:
            expected = set(db_names) | set(file_names)
            await in_sync(daemon, 0, len(expected))

            # The server vanishes. Meanwhile two mappings are deleted (the daemon cannot see
            # it) and the file gains a name: that pass goes ahead, removing nothing.
            mark = len(daemon.lines)
            cut_at = time.monotonic()
            await relay.cut()
            await daemon.wait_for("database unreachable", start=mark)
            for name in db_names[:2]:
                await db.execute(f"DELETE FROM {db.tables.mappings} WHERE id = %s", rows[name])
            site.domains_file.write_text("".join(f"{n}\n" for n in [*file_names, "late.test"]))
            await daemon.wait_for("add late.test: done", start=mark)
            expected.add("late.test")
            assert site.held() == expected and deletes(closte_sandbox) == []
            # An outage of the length asked for: the daemon keeps running passes on its own.
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
            assert deletes(closte_sandbox) == [] and daemon.process.returncode is None

            # Back: the two deletions are seen and followed, nothing else.
            mark = len(daemon.lines)
            await relay.restore()
            expected -= set(db_names[:2])
            await in_sync(daemon, mark, len(expected))
            assert sorted(deletes(closte_sandbox)) == sorted(db_names[:2])

            # The mappings table reads back empty: a mass removal, held for a release.
            sent = len(closte_sandbox.state.requests)
            mark = len(daemon.lines)
            await db.execute(f"DELETE FROM {db.tables.mappings}")
            await daemon.wait_for("pass:", "removals held", start=mark)
            assert deletes(closte_sandbox, sent) == [] and site.held() == expected
            mark = len(daemon.lines)
            for name in db_names[2:]:
                await add_mapping(db, name, blog_id=1)
            await in_sync(daemon, mark, len(expected))
            assert deletes(closte_sandbox, sent) == [] and site.held() == expected
        finally:
            await daemon.kill()
            await relay.cut()
