"""Churn for ten minutes under a running daemon: names added to and removed from the domains
file, mappings inserted, deleted and renamed in the database, Closte faults switched on and
off, two socket followers attached. The daemon's RSS and open file descriptors, sampled
from /proc after each step, stay flat (their slopes are reported); at the end Closte holds
exactly the desired set, and after a restart the event store is inside its limits.

CLOSTE_SYNC_SOAK_S shortens the churn for a local run (default: the issue's 600 s).
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_harness import DaemonProcess, Site, lay_out
from reliability_support import Follower

from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

SOAK_S = float(os.environ.get("CLOSTE_SYNC_SOAK_S", "600"))
MAX_EVENTS = 3000
FAULTS_ON = {"rates": {"server_error": 0.1, "timeout": 0.02, "rate_limit": 0.03}}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    times = [t / 60 for t, _ in samples]
    values = [v for _, v in samples]
    if len(samples) < 2 or len(set(times)) < 2:
        return 0.0
    return statistics.linear_regression(times, values).slope


class Churn:
    """The desired set as the sources hold it, and the changes that move it."""

    def __init__(self, site: Site, rng: random.Random) -> None:
        self.site = site
        self.rng = rng
        self.serial = 0
        self.file = {self._new("file") for _ in range(30)}
        self.db = {self._new("db") for _ in range(10)}
        self._write_file()
        for name in sorted(self.db):
            site.insert_mapping(name)

    @property
    def desired(self) -> set[str]:
        return self.file | self.db

    def _new(self, kind: str) -> str:
        self.serial += 1
        name = f"{kind}{self.serial:05}.soak.test"
        if self.serial % 2:
            self.site.point_at_network(name)  # half go live, half fail DNS
        return name

    def _write_file(self) -> None:
        self.site.domains_file.write_text("".join(f"{n}\n" for n in sorted(self.file)))

    def add_to_file(self) -> None:
        self.file |= {self._new("file") for _ in range(self.rng.randint(1, 3))}
        self._write_file()

    def remove_from_file(self) -> None:
        self.file -= set(self.rng.sample(sorted(self.file), min(2, len(self.file) - 5)))
        self._write_file()

    def insert_mapping(self) -> None:
        name = self._new("db")
        self.db.add(name)
        self.site.insert_mapping(name)

    def delete_mapping(self) -> None:
        name = self.rng.choice(sorted(self.db))
        self.db.discard(name)
        self.site.delete_mapping(name)

    def rename_mapping(self) -> None:
        old, new = self.rng.choice(sorted(self.db)), self._new("db")
        with self.site.network.connect() as db:
            db.execute(
                f"UPDATE {self.site.network.prefix}wu_domain_mappings SET domain = ?"
                " WHERE domain = ?",
                (new, old),
            )
        self.db = (self.db - {old}) | {new}

    def steps(self) -> list[Callable[[], None]]:
        steps = [self.add_to_file, self.insert_mapping, self.rename_mapping]
        if len(self.file) > 10:
            steps.append(self.remove_from_file)
        if len(self.db) > 5:
            steps.append(self.delete_mapping)
        return steps


def events_in_store(path: Path, before: float | None = None) -> int:
    """Events stored (only those from before ``before``, when given)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        if before is None:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
        return int(
            db.execute("SELECT count(*) FROM events WHERE time < ?", (before,)).fetchone()[0]
        )


@pytest.mark.heavy
@pytest.mark.timeout(SOAK_S + 600)
async def test_ten_minutes_of_churn_leave_memory_fds_and_the_store_flat(
    closte_sandbox: Sandbox, tmp_path: Path, report_figure: Callable[[str], None]
) -> None:
    site = lay_out(closte_sandbox, tmp_path)
    churn = Churn(site, random.Random("soak"))
    socket_path = site.base / "run" / "control.sock"
    env = {
        "CLOSTE_SYNC_STORE_MAX_EVENTS": str(MAX_EVENTS),
        "CLOSTE_SYNC_CLOSTE_TIMEOUT_S": "1",
    }
    closte_sandbox.api.faults.update({"hold_s": 2.0})
    daemon = await DaemonProcess.start(site, **env)
    followers = [Follower(socket_path), Follower(socket_path)]
    rss: list[tuple[float, float]] = []
    fds: list[tuple[float, float]] = []
    steps = 0
    try:
        await daemon.wait_for("pass:", "; in sync", timeout=60)
        for number, follower in enumerate(followers):
            await follower.start()
            await follower.ask(number, "subscribe")
        pid = daemon.process.pid
        started = time.monotonic()
        faults_on = False
        while time.monotonic() - started < SOAK_S:
            steps += 1
            if steps % 7 == 0:
                faults_on = not faults_on
                closte_sandbox.api.faults.update(FAULTS_ON if faults_on else {"rates": {}})
            mark = len(daemon.lines)
            churn.rng.choice(churn.steps())()
            await daemon.wait_for("pass:", start=mark, timeout=60)
            at = time.monotonic() - started
            rss.append((at, rss_kib(pid)))
            fds.append((at, open_fds(pid)))

        # Faults off, a full pass: Closte holds exactly what the sources want.
        closte_sandbox.api.faults.update({"rates": {}})
        mark = len(daemon.lines)
        await followers[0].ask(99, "resync")
        while True:
            index = await daemon.wait_for("pass:", start=mark, timeout=120)
            if "; in sync" in daemon.lines[index] and site.held() == churn.desired:
                break
            mark = index + 1
            await followers[0].ask(99, "resync")
        for follower in followers:
            assert follower.lines > steps  # each heard the churn
            assert b'"push":"dropped"' not in follower.received
        assert await daemon.stop() == 0
    finally:
        for follower in followers:
            await follower.close()
        await daemon.kill()
    events_before = events_in_store(site.store_path)

    # A restart prunes the store to its limit (the restarted daemon's own new events aside:
    # they come after the prune).
    restarted_at = time.time()
    daemon = await DaemonProcess.start(site, **env)
    try:
        await daemon.wait_for("ready:")
        await daemon.wait_for("pass:", "; in sync", timeout=60)
        events_after = events_in_store(site.store_path, before=restarted_at)
    finally:
        await daemon.kill()

    warm = [v for t, v in rss if t >= SOAK_S * 0.2]
    late = [v for t, v in rss if t >= SOAK_S * 0.75]
    warm_fds = [v for t, v in fds if t >= SOAK_S * 0.2]
    late_fds = [v for t, v in fds if t >= SOAK_S * 0.75]
    rss_slope = slope_per_minute([(t, v) for t, v in rss if t >= SOAK_S * 0.2])
    fd_slope = slope_per_minute([(t, v) for t, v in fds if t >= SOAK_S * 0.2])
    report_figure(
        f"soak {SOAK_S:.0f} s, {steps} churn steps: RSS {warm[0]:.0f} -> {rss[-1][1]:.0f} KiB"
        f" (slope {rss_slope:+.1f} KiB/min after warm-up); open fds {fds[0][1]:.0f} ->"
        f" {fds[-1][1]:.0f} (slope {fd_slope:+.2f}/min); events {events_before} at the end,"
        f" {events_after} after a restart's prune (max_events {MAX_EVENTS})"
    )
    assert steps >= 10
    # Flat, with room for a noisy machine: the last quarter is no higher than the
    # warmed-up level plus half again (memory) or a few descriptors (connections in flight).
    assert statistics.median(late) <= statistics.median(warm) * 1.5, (warm, late)
    assert max(late_fds) <= max(warm_fds) + 8, (warm_fds, late_fds)
    assert events_after <= MAX_EVENTS
