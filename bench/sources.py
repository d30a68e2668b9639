"""Benchmark: how fast the sources see changes, and what watching costs.

Figures:
  - MariaDB: time from a committed INSERT into wu_domain_mappings to the source's snapshot
    holding it, at the default 1 s poll (p50, p99; goal p99 <= 1 s). Each insert comes at a
    random moment within the poll period, as real changes do; 1,000 rows in the table.
  - Domains file: time from an appended line to the file source's snapshot holding it
    (p50, p99; goal p99 <= 300 ms). Measured at the same time as the MariaDB figure.
  - The cost of one change-fingerprint poll with 10,000 mappings and 10,000 sites, on a
    quiet database (median of many, the periodic safety checksum included; goal <= 5 ms),
    with the mean and the cost of the checksum alone beside it (what each poll costs for
    a few seconds after a change).
  - The source's CPU while nothing changes, 10,000 mappings, default 1 s poll, measured with
    time.process_time in a process that runs only the source (goal <= 1 % of a core).
  - Writing one domain's stage back with 10,000 mappings: ``write_stage`` by row id and by
    name (median, each call really changing the row), beside the baseline measured in the
    same run: reading every mapping row, which is what finding the domain's rows cost
    before the write became one indexed UPDATE (goal: by id at most a tenth of that).

Needs the MariaDB/MySQL server on 127.0.0.1:3306 (root, empty password); everything stays on
loopback and the throwaway databases are dropped at the end.

    python bench/sources.py [--changes 200] [--idle-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomysql
import pymysql
from _figures import figure, print_figures

from closte_sync.daemon.settings import DatabaseConnection, DatabaseSettings
from closte_sync.daemon.sources.database import DatabaseSource, TableNames
from closte_sync.daemon.sources.database.mysql import FRESH_S, MySQLBackend

SCHEMA = Path(__file__).resolve().parent.parent / "tests" / "sql" / "mysql.sql"
HOST, PORT = "127.0.0.1", 3306
LATENCY_ROWS = 1_000
BIG_ROWS = 10_000
FINGERPRINT_POLLS = 300
STAGE_WRITES = 200
GOALS = {
    "db_change_p99": 1.0,
    "file_edit_p99": 0.3,
    "fingerprint_ms": 5.0,
    "idle_cpu_percent": 1.0,
    "stage_write_share": 0.1,
}


# -- setup --------------------------------------------------------------------------------


async def root_connection() -> Any:
    return await aiomysql.connect(host=HOST, port=PORT, user="root", password="", autocommit=True)


async def create_database(root: Any, rows: int) -> str:
    name = f"closte_sync_bench_{secrets.token_hex(5)}"
    tables = TableNames.build("wp_")
    text = "\n".join(
        line for line in SCHEMA.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    text = text.replace("{prefix}", "wp_").replace("{mappings}", tables.mappings)
    async with root.cursor() as cur:
        await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        await cur.execute(f"USE `{name}`")
        for statement in (s.strip() for s in text.split(";")):
            if statement:
                await cur.execute(statement)
        await cur.execute("INSERT INTO wp_site (id, domain, path) VALUES (1, 'network.test', '/')")
        sites = [(1, "network.test", "/")] + [
            (1, f"site{i}.network.test", "/") for i in range(2, rows + 1)
        ]
        await cur.executemany(
            "INSERT INTO wp_blogs (site_id, domain, path) VALUES (%s, %s, %s)", sites
        )
        # As on a live subdomain network: every site has its own mapping record.
        mappings = [(1, "www.network.test")] + [
            (i, f"site{i}.network.test") for i in range(2, rows + 1)
        ]
        await cur.executemany(
            f"INSERT INTO {tables.mappings} (blog_id, domain, active, stage, date_created,"
            " date_modified) VALUES (%s, %s, 1, 'done', UTC_TIMESTAMP(), UTC_TIMESTAMP())",
            mappings,
        )
        await cur.execute(
            "INSERT INTO wp_sitemeta (site_id, meta_key, meta_value) VALUES"
            " (1, 'wp-ultimo_v2_settings', 'a:1:{s:18:\"dns_check_interval\";i:120;}')"
        )
    return name


def settings_for(name: str) -> DatabaseSettings:
    # Default poll (1 s); no site records so the benchmark never writes by itself.
    return DatabaseSettings(
        connection=DatabaseConnection(kind="mysql", name=name, user="root", host=HOST, port=PORT),
        create_site_records=False,
    )


# -- figures ------------------------------------------------------------------------------


async def wait_until_quiet(root: Any, name: str) -> None:
    """Wait (polling, bounded) until no table was written within the source's fresh window,
    so the poll figures show the steady state rather than the minutes after a bulk load."""
    async with asyncio.timeout(60):
        while True:
            async with root.cursor() as cur:
                await cur.execute(
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                    " AND UPDATE_TIME >= NOW() - INTERVAL %s SECOND",
                    (name, FRESH_S + 1),
                )
                (recent,) = await cur.fetchone()
            if not recent:
                return
            await asyncio.sleep(0.5)


async def fingerprint_cost(root: Any, name: str) -> dict[str, float]:
    """Per-poll cost on a quiet database (every poll, the periodic checksum included), and
    the cost of the checksum alone (what a poll costs while the tables are changing)."""
    await wait_until_quiet(root, name)
    settings = settings_for(name)
    assert settings.connection is not None
    quiet_backend = MySQLBackend(settings.connection, TableNames.build("wp_"), 1)
    busy_backend = MySQLBackend(
        settings.connection, TableNames.build("wp_"), 1, full_every=0
    )  # full_every=0: the checksum runs on every poll
    result: dict[str, float] = {}
    try:
        for label, backend in (("poll", quiet_backend), ("checksum", busy_backend)):
            for _ in range(10):
                await backend.fingerprint()
            took = []
            for _ in range(FINGERPRINT_POLLS):
                started = time.perf_counter()
                await backend.fingerprint()
                took.append(time.perf_counter() - started)
            result[f"{label}_median_ms"] = statistics.median(took) * 1000
            result[f"{label}_mean_ms"] = statistics.fmean(took) * 1000
    finally:
        await quiet_backend.close()
        await busy_backend.close()
    return result


async def stage_write_cost(root: Any, name: str) -> dict[str, float]:
    """Median cost of one write_stage, by row id and by name, and of a read of every
    mapping row (the old way of finding a domain's rows), on the same database."""
    tables = TableNames.build("wp_")
    target = "site5000.network.test"
    async with root.cursor() as cur:
        await cur.execute(f"SELECT id FROM `{name}`.{tables.mappings} WHERE domain = %s", target)
        (row_id,) = await cur.fetchone()
    source = DatabaseSource(settings_for(name))
    result: dict[str, float] = {}
    try:
        for label, ids in (("by_id", [row_id]), ("by_name", None)):
            took = []
            for i in range(STAGE_WRITES):
                # Alternate stages so that every call really writes the row.
                stage = "checking-ssl-cert" if i % 2 == 0 else "done"
                started = time.perf_counter()
                changed = await source.write_stage(target, stage, i % 2 == 1, mapping_ids=ids)
                took.append(time.perf_counter() - started)
                assert changed == 1, f"write_stage changed {changed} rows"
            result[f"{label}_ms"] = statistics.median(took) * 1000
    finally:
        await source.aclose()
    conn = await aiomysql.connect(host=HOST, port=PORT, user="root", db=name, autocommit=True)
    try:
        took = []
        for _ in range(STAGE_WRITES // 4):
            started = time.perf_counter()
            async with conn.cursor() as cur:
                await cur.execute(
                    "SELECT id, blog_id, domain, active, primary_domain, secure, stage"
                    f" FROM {tables.mappings} ORDER BY id"
                )
                await cur.fetchall()
            took.append(time.perf_counter() - started)
        result["full_read_ms"] = statistics.median(took) * 1000
    finally:
        conn.close()
    return result


class Watcher:
    """Drives a source's watch() and notes when each name first appears."""

    def __init__(self, stream: Any) -> None:
        self.seen_at: dict[str, float] = {}
        self._stream = stream
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for snapshot in self._stream:
            now = time.perf_counter()
            for name in snapshot.domains:
                self.seen_at.setdefault(name, now)
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, name: str, timeout: float = 10.0) -> float:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: name in self.seen_at)
        return self.seen_at[name]


async def db_change_latency(root: Any, name: str, changes: int) -> list[float]:
    source = DatabaseSource(settings_for(name))
    watcher = Watcher(source.watch())
    table = TableNames.build("wp_").mappings
    try:
        await watcher.wait_for("site2.network.test")
        latencies = []
        for i in range(changes):
            # A random phase against the poll, so the figure is what a real change sees.
            await asyncio.sleep(random.uniform(0, 1.0))
            domain = f"new{i}.bench.example"
            async with root.cursor() as cur:
                await cur.execute(
                    f"INSERT INTO `{name}`.{table} (blog_id, domain, active, stage, date_created,"
                    " date_modified) VALUES (2, %s, 1, 'checking-dns', UTC_TIMESTAMP(),"
                    " UTC_TIMESTAMP())",
                    (domain,),
                )
            committed = time.perf_counter()  # autocommit: the INSERT is durable when it returns
            latencies.append(await watcher.wait_for(domain) - committed)
        return latencies
    finally:
        watcher.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher.task
        await source.aclose()


async def file_edit_latency(changes: int) -> list[float] | None:
    try:
        from closte_sync.daemon.sources.domains_file import DomainsFileSource
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "domains.txt"
        path.write_text("start.bench.example\n")
        source = DomainsFileSource(path)
        watcher = Watcher(source.watch())
        try:
            await watcher.wait_for("start.bench.example")
            latencies = []
            for i in range(changes):
                await asyncio.sleep(random.uniform(0, 0.3))
                domain = f"file{i}.bench.example"
                with path.open("a") as handle:
                    handle.write(domain + "\n")
                written = time.perf_counter()
                latencies.append(await watcher.wait_for(domain) - written)
            return latencies
        finally:
            watcher.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher.task
            await source.aclose()


async def idle_worker(name: str, idle_s: float) -> None:
    """Runs in its own process: only the source, watching a database that does not change."""
    source = DatabaseSource(settings_for(name))
    snapshots = 0
    first = asyncio.Event()

    async def consume() -> None:
        nonlocal snapshots
        async for snapshot in source.watch():
            snapshots += 1
            assert len(snapshot.domains) == BIG_ROWS
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 60)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(idle_s)  # the measurement window itself
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await source.aclose()
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "snapshots": snapshots}), flush=True)


async def idle_cpu_percent(name: str, idle_s: float) -> float:
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--idle-worker",
        name,
        "--idle-s",
        str(idle_s),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(worker.communicate(), idle_s + 120)
    result = json.loads(out.decode().strip().splitlines()[-1])
    return float(result["cpu_s"]) / float(result["wall_s"]) * 100


# -- report -------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main(changes: int, idle_s: float) -> int:
    try:
        root = await asyncio.wait_for(root_connection(), 5)
    except (pymysql.err.Error, OSError, TimeoutError) as exc:
        print(f"MariaDB/MySQL not reachable on {HOST}:{PORT} as root: {exc}", file=sys.stderr)
        return 1
    created: list[str] = []
    try:
        small = await create_database(root, LATENCY_ROWS)
        created.append(small)
        big = await create_database(root, BIG_ROWS)
        created.append(big)
        print(f"databases ready: {small} ({LATENCY_ROWS} rows), {big} ({BIG_ROWS} rows)")

        cost = await fingerprint_cost(root, big)
        print(
            f"fingerprint poll on a quiet database: median {cost['poll_median_ms']:.2f} ms,"
            f" mean {cost['poll_mean_ms']:.2f} ms; the checksum alone: median"
            f" {cost['checksum_median_ms']:.2f} ms ({FINGERPRINT_POLLS} polls each)"
        )
        print(f"measuring: {changes} MariaDB inserts, {changes} file edits, {idle_s:.0f} s idle")
        idle, db_latencies, file_latencies = await asyncio.gather(
            idle_cpu_percent(big, idle_s),
            db_change_latency(root, small, changes),
            file_edit_latency(changes),
        )
        # After the idle figure: these writes would wake the idle source.
        writes = await stage_write_cost(root, big)
    finally:
        async with root.cursor() as cur:
            for name in created:
                await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()

    figures = [
        figure("db_change_latency_p50", percentile(db_latencies, 0.5), "s", None),
        figure(
            "db_change_latency_p99", percentile(db_latencies, 0.99), "s", GOALS["db_change_p99"]
        ),
    ]
    if file_latencies is not None:
        figures += [
            figure("file_edit_latency_p50", percentile(file_latencies, 0.5), "s", None),
            figure(
                "file_edit_latency_p99",
                percentile(file_latencies, 0.99),
                "s",
                GOALS["file_edit_p99"],
            ),
        ]
    figures += [
        figure("db_fingerprint_poll_10k", cost["poll_median_ms"], "ms", GOALS["fingerprint_ms"]),
        figure("db_fingerprint_poll_10k_mean", cost["poll_mean_ms"], "ms", None),
        figure("db_checksum_10k", cost["checksum_median_ms"], "ms", None),
        figure("db_source_idle_cpu_10k", idle, "%", GOALS["idle_cpu_percent"]),
        figure("db_write_stage_by_id_10k", writes["by_id_ms"], "ms", None),
        figure("db_write_stage_by_name_10k", writes["by_name_ms"], "ms", None),
        figure("db_read_all_mappings_10k", writes["full_read_ms"], "ms", None),
        figure(
            "db_write_stage_by_id_share",
            writes["by_id_ms"] / writes["full_read_ms"],
            "ratio",
            GOALS["stage_write_share"],
        ),
    ]

    if file_latencies is None:
        print("(domains file source not available: file figure left out)")
    print_figures(figures, width=28)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--idle-worker", metavar="DATABASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.idle_worker:
        asyncio.run(idle_worker(args.idle_worker, args.idle_s))
        raise SystemExit(0)
    raise SystemExit(asyncio.run(main(args.changes, args.idle_s)))
