"""Benchmark: 10,000 alias adds through the Closte client against the sandbox API.

The sandbox answers every request after 50 ms; the client runs 16 requests at a time with a
rate limit too high to bind. The ideal time is 10,000 x 0.05 s / 16 = 31.25 s; the figure is
the measured time over that bound (goal: at most 1.15). The sandbox runs in a subprocess so
the two sides do not share one event loop on a 2-core machine. The client sends through
httpx's own transport; the daemon's default limit (2 calls/s) is far below what this loads.

    python bench/closte_client.py [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

from closte_sync.daemon.closte import ClosteClient, ResultKind
from closte_sync.daemon.settings import ClosteSettings
from closte_sync.sandbox.api import SandboxApi
from closte_sync.sandbox.faults import Faults
from closte_sync.sandbox.state import SandboxState
from closte_sync.shared.secret import Secret

API_KEY = "ck_bench_0123456789abcdef0123456789abcdef"
LATENCY_S = 0.05
CONCURRENCY = 16
GOAL_RATIO = 1.15


async def serve(latency_s: float) -> None:
    """The sandbox side: print the URL, serve until stdin closes."""
    api = SandboxApi(SandboxState(api_keys={API_KEY}), Faults(latency_ms=latency_s * 1000))
    await api.start()
    print(api.url, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent goes away
    await api.stop()


async def measure(
    count: int, latency_s: float = LATENCY_S, concurrency: int = CONCURRENCY
) -> dict[str, float]:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        "--latency-ms",
        str(latency_s * 1000),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None and server.stdin is not None
    try:
        async with asyncio.timeout(30):
            url = (await server.stdout.readline()).decode().strip()
        settings = ClosteSettings(
            api_key=Secret(API_KEY),
            base_url=url,
            concurrency=concurrency,
            rate_per_second=1_000_000.0,
            retry_budget=0,
        )
        async with ClosteClient(settings) as client:
            await client.test_connection()  # open a connection before the clock starts
            started = time.perf_counter()
            cpu_started = time.process_time()
            results = await asyncio.gather(
                *(client.add_alias(f"site{i}.bench.example") for i in range(count))
            )
            took = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    finally:
        server.stdin.close()
        async with asyncio.timeout(30):
            await server.wait()
    done = sum(r.kind is ResultKind.DONE for r in results)
    return {
        "took": took,
        "done": done,
        "median_call": statistics.median(r.elapsed for r in results),
        "client_cpu_ms": cpu / count * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--latency-ms", type=float, default=LATENCY_S * 1000, help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.latency_ms / 1000))
        return 0
    figures = asyncio.run(measure(args.count))
    bound = args.count * LATENCY_S / CONCURRENCY
    ratio = figures["took"] / bound
    met = ratio <= GOAL_RATIO and figures["done"] == args.count
    print(
        f"Closte client: {args.count} adds, {LATENCY_S * 1000:.0f} ms latency, "
        f"concurrency {CONCURRENCY}"
    )
    print(f"  {'adds done':<26}{figures['done']:>10}")
    print(f"  {'measured time':<26}{figures['took']:>10.2f} s")
    print(f"  {'bound (n x latency / c)':<26}{bound:>10.2f} s")
    print(f"  {'ratio (goal <= 1.15)':<26}{ratio:>10.3f}")
    print(f"  {'median call (queue incl.)':<26}{figures['median_call']:>10.2f} s")
    print(f"  {'client CPU per add':<26}{figures['client_cpu_ms']:>10.2f} ms")
    print(
        json.dumps(
            {
                "figure": "closte_client.add_10k_ratio",
                "value": round(ratio, 4),
                "unit": "ratio",
                "goal": GOAL_RATIO,
                "better": "lower",
                "met": met,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
