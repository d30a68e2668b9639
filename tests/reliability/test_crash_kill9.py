"""`kill -9` at a random moment of a 1,000-domain sync, then a restart: nothing lost, nothing
doubled, nothing removed. Checked against the sandbox's own request log, not the ledger."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

import pytest
from daemon_harness import DaemonProcess, lay_out

from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.state import RecordedRequest

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

RUNS = int(os.environ.get("CLOSTE_SYNC_CRASH_RUNS", "20"))
DOMAINS = 1000
# Fast enough that a run takes seconds, slow enough that a kill lands inside the batch.
FAST = {"CLOSTE_SYNC_CLOSTE_RATE_PER_SECOND": "400", "CLOSTE_SYNC_CLOSTE_CONCURRENCY": "8"}


def _adds_after_success(requests: list[RecordedRequest]) -> dict[str, int]:
    """Per domain, how many adds were sent after Closte had accepted one."""
    accepted: set[str] = set()
    doubled: dict[str, int] = defaultdict(int)
    for request in requests:
        if not request.path.endswith("/adddomainalias"):
            continue
        domain = request.fields.get("domain", "")
        if domain in accepted:
            doubled[domain] += 1
        elif request.outcome == "ok":
            accepted.add(domain)
    return dict(doubled)


@pytest.mark.heavy
@pytest.mark.parametrize("run", range(RUNS))
async def test_kill_9_at_a_random_moment_then_restart_converges_exactly(
    closte_sandbox: Sandbox, tmp_path: Path, run: int
) -> None:
    rng = random.Random(f"crash-run-{run}")
    names = [f"r{run:02}-{i:04}.example.test" for i in range(DOMAINS)]
    site = lay_out(closte_sandbox, tmp_path, file_lines=names)
    # The kill comes after this many adds were reported done (the daemon may be ahead).
    kill_after = rng.randint(1, DOMAINS - 1)
    daemon = await DaemonProcess.start(site, **FAST)
    try:
        index = -1
        for _ in range(kill_after):
            index = await daemon.wait_for("add ", ": done", start=index + 1, timeout=120)
    finally:
        await daemon.kill()
    held_at_kill = len(site.held())
    assert held_at_kill >= kill_after

    daemon = await DaemonProcess.start(site, **FAST)
    try:
        await daemon.wait_for("pass:", "; in sync", timeout=180)
    finally:
        await daemon.kill()

    context = f"run {run}: killed after {kill_after} adds ({held_at_kill} held then)"
    assert site.held() == set(names), context
    requests = list(closte_sandbox.state.requests)
    assert _adds_after_success(requests) == {}, context
    accepted = [
        r.fields["domain"]
        for r in requests
        if r.path.endswith("/adddomainalias") and r.outcome == "ok"
    ]
    assert sorted(accepted) == sorted(names), context
    assert [r for r in requests if r.path.endswith("/deletedomainalias")] == [], context
