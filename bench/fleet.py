"""Benchmark: several web nodes on one database, one leader.

Figures:
  - Failover time: from ``kill -9`` of the leading daemon to another daemon logging that it
    leads (its ledger merged from the shared table), three daemons on one MariaDB database
    and one sandbox, default ``[cluster] retry_s`` (3 s); p99 over 10 failovers (goal
    <= 10 s), with the median beside it. The killed node is replaced after each round.
  - The leader's lock check (``IS_USED_LOCK(name) = CONNECTION_ID()`` on its lock
    connection), which the pass awaits before every batch of Closte calls: median and p99
    over many checks (goal: median <= 1 ms).

Needs the MariaDB/MySQL server on 127.0.0.1:3306 (root, empty password); everything stays on
loopback, and the throwaway database is dropped at the end.

    python bench/fleet.py [--failovers 10] [--checks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _figures import figure, print_figures
from daemon_harness import DaemonProcess
from sources import create_database, percentile, root_connection

from closte_sync.daemon.cluster.lock import LeaderLock
from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.wordpress import build_network

HOST, PORT = "127.0.0.1", 3306
GOALS = {"failover_p99": 10.0, "lock_check_ms": 1.0}
LEADER_LINE = "leader now"


async def start_node(env: dict[str, str]) -> DaemonProcess:
    node = await DaemonProcess.launch(env, "daemon")
    await node.wait_for("ready:", timeout=60)
    return node


async def first_leader(nodes: list[DaemonProcess], marks: list[int]) -> tuple[DaemonProcess, float]:
    """The first of ``nodes`` to say it leads (after line ``marks[i]``), and when it did."""
    waits = {
        asyncio.ensure_future(n.wait_for(LEADER_LINE, start=m, timeout=60)): n
        for n, m in zip(nodes, marks, strict=True)
    }
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    task = next(iter(done))
    leader = waits[task]
    return leader, leader.arrived[task.result()]


async def failover_times(database: str, rounds: int) -> list[float]:
    times = []
    async with Sandbox.running(cert_delay_s=0.0) as sandbox:
        with tempfile.TemporaryDirectory(prefix="closte-sync-fleet-") as folder:
            base = Path(folder)
            network = build_network(base / "wp", api_key=sandbox.api_key)
            common = {k: v for k, v in os.environ.items() if not k.startswith("CLOSTE_SYNC_")}
            common |= {
                "CLOSTE_SYNC_WORDPRESS_ROOT": str(network.root),
                "CLOSTE_SYNC_CLOSTE_BASE_URL": sandbox.api.url,
                "CLOSTE_SYNC_DATABASE_URL": f"mysql://root@{HOST}:{PORT}/{database}",
                "CLOSTE_SYNC_CHECKS_NAMESERVERS": sandbox.dns_server.address,
                "CLOSTE_SYNC_CHECKS_TLS_PORT": str(sandbox.tls.port),
                "CLOSTE_SYNC_CHECKS_CA_BUNDLE": str(sandbox.ca_bundle),
                "CLOSTE_SYNC_CHECKS_NETWORK_IPS": sandbox.network_ip,
                "CLOSTE_SYNC_CLUSTER_ENABLED": "true",
            }
            started = 0

            async def start() -> DaemonProcess:
                nonlocal started
                started += 1
                here = base / f"node{started}"
                return await start_node(
                    common
                    | {
                        "CLOSTE_SYNC_STORE_PATH": str(here / "state.sqlite3"),
                        "CLOSTE_SYNC_SOCKET_PATH": str(here / "control.sock"),
                    }
                )

            nodes = list(await asyncio.gather(start(), start(), start()))
            try:
                leader, _ = await first_leader(nodes, [0] * len(nodes))
                for _ in range(rounds):
                    others = [n for n in nodes if n is not leader]
                    marks = [len(n.lines) for n in others]
                    killed_at = time.monotonic()
                    await leader.kill()
                    leader, led_at = await first_leader(others, marks)
                    times.append(led_at - killed_at)
                    print(f"  failover {len(times)}: {times[-1]:.2f} s")
                    nodes = [*others, await start()]
            finally:
                await asyncio.gather(*(n.kill() for n in nodes))
    return times


async def lock_check_ms(database: str, checks: int) -> list[float]:
    connection = DatabaseConnection(kind="mysql", name=database, user="root", host=HOST, port=PORT)
    lock = LeaderLock(connection, f"closte_sync:{database}:bench")
    try:
        assert await lock.acquire()
        for _ in range(50):  # warm up
            await lock.holds()
        costs = []
        for _ in range(checks):
            start = time.perf_counter()
            assert await lock.holds()
            costs.append((time.perf_counter() - start) * 1000)
        return costs
    finally:
        await lock.close()


async def main(failovers: int, checks: int) -> int:
    try:
        root = await root_connection()
    except Exception as exc:
        print(f"cannot run: MariaDB/MySQL on {HOST}:{PORT} as root: {exc}", file=sys.stderr)
        return 1
    database = await create_database(root, 0)
    try:
        print(f"measuring: the lock check, {checks} times")
        costs = await lock_check_ms(database, checks)
        print(f"measuring: {failovers} failovers, three daemons")
        times = await failover_times(database, failovers)
    finally:
        async with root.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        root.close()

    figures: list[dict[str, Any]] = [
        figure("fleet_failover_p50", percentile(times, 0.5), "s", None),
        figure("fleet_failover_p99", percentile(times, 0.99), "s", GOALS["failover_p99"]),
        figure("fleet_lock_check", statistics.median(costs), "ms", GOALS["lock_check_ms"]),
        figure("fleet_lock_check_p99", percentile(costs, 0.99), "ms", None),
    ]
    print_figures(figures, width=24)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--checks", type=int, default=2000)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.failovers, args.checks)))
