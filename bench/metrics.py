"""Benchmark: what a Prometheus scrape of the daemon's metrics endpoint costs.

Figures, with 10,000 domains in the store (held on Closte, spread over the stages) and the
call histograms filled by 10,000 Closte call events:
  - A scrape of a quiet daemon: nothing changed since the last one, so the cached counts
    are served (p50, p99; goal p99 <= 50 ms).
  - A scrape right after a change: the counts are read again from the store first (p50,
    p99; goal p99 <= 50 ms). This is the most a scrape costs.
  - Reading the counts alone (median), beside the baseline measured in the same run:
    reading every ledger row and stage row through the store's own API, as the socket's
    status does (the share is the goal: at most a tenth).
Each scrape is a real HTTP GET over loopback from a client in the same process, so the
times include the client's side too: an upper bound for what Prometheus waits.

    python bench/metrics.py [--scrapes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _figures import figure, print_figures

from closte_sync.daemon.closte.client import EVENT_KIND
from closte_sync.daemon.control.hub import ControlHub
from closte_sync.daemon.events import Level, NullSink, make_event
from closte_sync.daemon.metrics.endpoint import MetricsEndpoint
from closte_sync.daemon.metrics.store_counts import StoreCountReader
from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store import Stage, Store, Wish, open_store

DOMAINS = 10_000
CALL_EVENTS = 10_000
GOALS = {"scrape_p99_ms": 50.0, "counts_share": 0.1}
STAGES = (Stage.DONE, Stage.CHECKING_DNS, Stage.CHECKING_SSL_CERT, Stage.FAILED)


async def fill(store: Store) -> None:
    names = [f"site{i}.network.test" for i in range(DOMAINS)]
    await store.ledger.settle({n: Wish("database") for n in names}, names)
    await store.stages.track({n: STAGES[i % len(STAGES)] for i, n in enumerate(names)})


def status() -> dict[str, Any]:
    now = time.time()
    return {
        "version": "bench",
        "started_at": now - 3600,
        "passes": 12,
        "last_pass_at": now - 5,
        "last_good_pass_at": now - 5,
        "in_sync": True,
        "held_plan": None,
        "held_removals": [],
        "sources": {
            "database": {"healthy": True, "domains": DOMAINS},
            "domains_file": {"healthy": True, "domains": 0},
        },
    }


def calls(hub: ControlHub) -> None:
    for i in range(CALL_EVENTS):
        operation = ("add", "remove", "list")[i % 3]
        kind = ("done", "already-present", "timeout", "server-error")[i % 4]
        hub.emit(
            make_event(
                Level.INFO,
                EVENT_KIND,
                f"{operation}: {kind}",
                operation=operation,
                result=kind,
                elapsed=0.05 + (i % 100) / 100,
            )
        )


async def scrape_times(
    http: httpx.AsyncClient, url: str, hub: ControlHub, count: int, *, changed: bool
) -> list[float]:
    times = []
    for i in range(count):
        if changed:
            hub.domain_changed(f"site{i}.network.test")  # what a pass or a check round does
        started = time.perf_counter()
        answer = await http.get(url)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return times


async def counts_cost(path: Path, store: Store, rounds: int) -> tuple[float, float]:
    async with StoreCountReader(path) as reader:
        ours = []
        for _ in range(rounds):
            started = time.perf_counter()
            await reader.read()
            ours.append((time.perf_counter() - started) * 1000)
    full = []
    for _ in range(max(5, rounds // 10)):
        started = time.perf_counter()
        await store.ledger.entries()
        await store.stages.all()
        full.append((time.perf_counter() - started) * 1000)
    return statistics.median(ours), statistics.median(full)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main(scrapes: int) -> int:
    with tempfile.TemporaryDirectory(prefix="closte-sync-bench-") as folder:
        path = Path(folder) / "state.sqlite3"
        async with await open_store(StoreSettings(path=path)) as store:
            await fill(store)
            hub = ControlHub(NullSink())
            endpoint = await MetricsEndpoint.start(
                "127.0.0.1:0",
                store_path=path,
                status=status,
                desired=lambda: DOMAINS,
                hub=hub,
                events=NullSink(),
            )
            try:
                calls(hub)
                async with httpx.AsyncClient(timeout=30) as http:
                    text = (await http.get(endpoint.url)).text  # warm: first read of the counts
                    if "closte_sync_domains_held 10000.0" not in text:
                        print("the endpoint does not show the 10,000 domains", file=sys.stderr)
                        return 1
                    quiet = await scrape_times(http, endpoint.url, hub, scrapes, changed=False)
                    changed = await scrape_times(http, endpoint.url, hub, scrapes, changed=True)
                size = len(text.encode())
            finally:
                await endpoint.aclose()
            counts_ms, full_ms = await counts_cost(path, store, scrapes)

    print(f"{DOMAINS} domains, {CALL_EVENTS} call events, {scrapes} scrapes each; {size} bytes")
    figures = [
        figure("metrics_scrape_quiet_p50", percentile(quiet, 0.5), "ms", None),
        figure("metrics_scrape_quiet_p99", percentile(quiet, 0.99), "ms", GOALS["scrape_p99_ms"]),
        figure("metrics_scrape_changed_p50", percentile(changed, 0.5), "ms", None),
        figure(
            "metrics_scrape_changed_p99", percentile(changed, 0.99), "ms", GOALS["scrape_p99_ms"]
        ),
        figure("metrics_counts_read_10k", counts_ms, "ms", None),
        figure("store_read_all_rows_10k", full_ms, "ms", None),
        figure("metrics_counts_share", counts_ms / full_ms, "ratio", GOALS["counts_share"]),
    ]
    print_figures(figures, width=28)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    raise SystemExit(asyncio.run(main(parser.parse_args().scrapes)))
