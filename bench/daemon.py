"""Benchmark: what users feel from the daemon, against the sandbox on loopback.

Figures (N = --domains, 10,000 by default):
  1. One DNS stage pass: ``Engine.run_checks()`` with N domains due in checking-dns, all
     pointing at the network; the figure is the round's DNS checks, results written
     (``RoundReport.due_s``), before the SSL checks that follow them in the same round
     (goal <= 3 s). Here the TLS port is one where nothing listens, so those SSL checks are
     refused at once and leave the domains in checking-ssl-cert for figure 2. The whole
     first round, DNS and then SSL against the TLS edge, is reported beside it.
  2. One SSL stage pass: N domains due in checking-ssl-cert, certificates valid
     (goal <= 30 s).
  3. A steady pass: ``Engine.run_pass()`` with N domains held and desired, nothing changed,
     median of several (goal <= 300 ms).
  4. A mapping INSERTed into MariaDB until the sandbox has answered its add: the real daemon
     as a subprocess at its default settings (1 s poll, 2 calls/s), one row at a time at a
     random moment, p99 over --inserts rows (goal <= 1.5 s).
  5. The add rate at the default limit (2 calls/s, concurrency 4): --adds adds in one pass,
     achieved rate over the configured one (goal >= 0.95). The limiter lets ``concurrency``
     calls go at once, so the bound is adds / (adds - 4) above 1.
  6. The daemon's peak RSS (VmHWM) holding N domains, once in sync and after its first round
     of checks (goal <= 150 MB).

Beside each stage pass the table shows where its time went: this process's CPU (every
thread, the store's SQLite thread included), the sandbox process's CPU, and the time
spent in ``Stages.record_many`` (lock waits included; a batch is recorded while the next
one is checked, so this time overlaps the checks and is not a share of the wall time). On
a machine of two cores the sandbox's own CPU (it answers every DNS question and TLS
handshake) competes with the daemon's: the sum of the two CPU figures over the number of
cores is a floor under the wall time. ``--profile`` runs the measured calls under cProfile
and prints the top functions (the main thread only: the store's SQLite thread does not show
there).

The sandbox of figures 1-3 and 6 runs in its own process, holding N aliases with their DNS
records and issued certificates before any clock starts; figures 4 and 5 run a small one in
this process. Figure 4 needs MariaDB on 127.0.0.1:3306 (root, empty password); without it
that figure is left out.

    python bench/daemon.py [--domains 10000] [--inserts 50] [--adds 200] [--quick]
                           [--profile] [--stages-only]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _daemon_setup import (
    SandboxInfo,
    closed_port,
    domain_names,
    info_env,
    load,
    peak_rss_mb,
    sandbox_env,
    sandbox_process,
    write_domains_file,
)
from _figures import figure
from daemon_harness import DaemonProcess

from closte_sync.daemon.service.engine import Engine
from closte_sync.daemon.service.stage_runner import RoundReport
from closte_sync.daemon.store import Stage
from closte_sync.sandbox.runner import Sandbox

GOALS = {
    "dns_pass_s": 3.0,
    "ssl_pass_s": 30.0,
    "steady_pass_ms": 300.0,
    "insert_to_add_p99_s": 1.5,
    "add_rate_ratio": 0.95,
    "peak_rss_mb": 150.0,
}
STEADY_PASSES = 7
DEFAULT_RATE = 2.0  # closte.rate_per_second's default
DEFAULT_CONCURRENCY = 4

T = TypeVar("T")


class Profiler:
    """With --profile, the measured calls run under cProfile and the top functions print."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.reports: dict[str, str] = {}

    async def run(self, label: str, call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        profile = cProfile.Profile() if self.enabled else None
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        result = await call()
        took = time.perf_counter() - started
        if profile is not None:
            profile.disable()
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("tottime").print_stats(15)
            self.reports[label] = out.getvalue()
        return result, took


# -- figures 1-3: the engine in this process, the sandbox in its own ------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def checks_round(
    label: str, engine: Engine, sandbox_pid: int, profiler: Profiler
) -> tuple[RoundReport, dict[str, float]]:
    """One ``run_checks`` and where its time went: this process's CPU (all threads, the
    store's included), the sandbox's CPU, and the wall time of writing the results."""
    stages = engine.store.stages
    record_many = stages.record_many
    writing = 0.0

    async def timed_record_many(*args: Any, **kwargs: Any) -> None:
        nonlocal writing
        started = time.perf_counter()
        try:
            await record_many(*args, **kwargs)
        finally:
            writing += time.perf_counter() - started

    stages.record_many = timed_record_many  # type: ignore[method-assign]
    cpu, sandbox_cpu = time.process_time(), process_cpu_s(sandbox_pid)
    try:
        report, took = await profiler.run(label, engine.run_checks)
    finally:
        del stages.record_many  # back to the class's method
    return report, {
        "wall_s": took,
        "cpu_s": time.process_time() - cpu,
        "sandbox_cpu_s": process_cpu_s(sandbox_pid) - sandbox_cpu,
        "store_write_s": writing,
        "checked": report.checked,
        "followed": report.followed,
        "due_s": report.due_s,
        "follow_s": report.follow_s,
    }


def count_stages(store_path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT stage, count(*) FROM stages GROUP BY stage").fetchall()
    finally:
        db.close()
    return {str(stage): int(n) for stage, n in rows}


async def engine_figures(info: SandboxInfo, count: int, profiler: Profiler) -> dict[str, Any]:
    names = domain_names(count)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cs-bench-") as folder:
        base = Path(folder)
        domains = write_domains_file(base, names)
        file_env = {"CLOSTE_SYNC_DOMAINS_FILE_PATH": str(domains)}
        refused = load(
            info_env(info, base, CLOSTE_SYNC_CHECKS_TLS_PORT=str(closed_port()), **file_env),
            base,
        )
        working = load(info_env(info, base, **file_env), base)
        store_path = working.settings.store.path

        # 1. The DNS stage: every SSL check that follows is refused at once.
        async with Engine.open(refused) as engine:
            await engine.read_sources()
            first = await engine.run_pass()
            assert first.error is None, first.error
            _, result["dns"] = await checks_round("dns_pass", engine, info.pid, profiler)
            await engine.store.events.flush()
        result["after_dns"] = count_stages(store_path)

        # 2. The SSL stage: the same domains, now in checking-ssl-cert, due at once.
        async with Engine.open(working) as engine:
            await engine.read_sources()
            await engine.run_pass()
            await engine.store.stages.reschedule(0)
            _, result["ssl"] = await checks_round("ssl_pass", engine, info.pid, profiler)
            await engine.store.events.flush()
            result["after_ssl"] = count_stages(store_path)

            # 3. Steady passes: N held, N desired, nothing to do.
            steady = []
            for i in range(STEADY_PASSES):
                report, took = await profiler.run(f"steady_pass_{i}", engine.run_pass)
                assert report.in_sync and report.plan is not None and report.plan.empty
                steady.append(took)
            result["steady_pass_ms"] = [t * 1000 for t in steady]
            await engine.store.events.flush()

        # 1b. The whole first round, DNS then SSL at once, on a store of its own.
        whole = load(
            info_env(
                info, base, CLOSTE_SYNC_STORE_PATH=str(base / "whole" / "s.sqlite3"), **file_env
            ),
            base,
        )
        async with Engine.open(whole) as engine:
            await engine.read_sources()
            await engine.run_pass()
            _, result["whole"] = await checks_round("whole_round", engine, info.pid, profiler)
            await engine.store.events.flush()
        result["after_whole"] = count_stages(whole.settings.store.path)
    return result


# -- figure 6: the daemon's memory ---------------------------------------------------------


async def daemon_memory(info: SandboxInfo, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cs-bench-") as folder:
        base = Path(folder)
        domains = write_domains_file(base, domain_names(count))
        env = info_env(info, base, CLOSTE_SYNC_DOMAINS_FILE_PATH=str(domains))
        store_path = base / "state" / "closte-sync.sqlite3"
        daemon = await DaemonProcess.launch(env, "daemon", cwd=base)
        try:
            await daemon.wait_for("ready:", timeout=120)
            await daemon.wait_for("pass:", "; in sync", timeout=300)
            in_sync_hwm, _ = peak_rss_mb(daemon.pid)
            # The first round of checks (DNS and SSL for every domain): poll the store.
            async with asyncio.timeout(600):
                while True:
                    if count_stages(store_path).get(Stage.DONE.value, 0) >= count:
                        break
                    await asyncio.sleep(0.5)  # another process's file: nothing to wait on
            checked_hwm, rss = peak_rss_mb(daemon.pid)
        finally:
            await daemon.stop(timeout=15)
    return {"in_sync_hwm_mb": in_sync_hwm, "checked_hwm_mb": checked_hwm, "rss_mb": rss}


# -- figure 4: MariaDB INSERT to the sandbox's add -----------------------------------------


async def mariadb_available() -> str | None:
    import aiomysql
    import pymysql

    try:
        conn = await asyncio.wait_for(
            aiomysql.connect(host="127.0.0.1", port=3306, user="root", password=""), 5
        )
    except (pymysql.err.Error, OSError, TimeoutError) as exc:
        return f"MariaDB/MySQL not reachable on 127.0.0.1:3306 as root: {exc}"
    conn.close()
    return None


def add_request_at(sb: Sandbox, domain: str, start: int) -> tuple[float | None, int]:
    """When the sandbox answered an add of ``domain`` (its log from ``start``), and where
    to look from next time."""
    requests = sb.state.requests
    for index in range(start, len(requests)):
        request = requests[index]
        if request.path.endswith("/adddomainalias") and request.fields.get("domain") == domain:
            return request.time, index
    return None, len(requests)


async def insert_to_add(inserts: int) -> list[float]:
    from db_fixtures import add_mapping, add_site, mysql_database

    latencies: list[float] = []
    async with (
        Sandbox.running(cert_delay_s=0) as sb,
        mysql_database() as db,
    ):
        with tempfile.TemporaryDirectory(prefix="cs-bench-") as folder:
            base = Path(folder)
            blog_id = await add_site(db, "shop.network.test")
            env = sandbox_env(
                sb.api.url,
                sb.api_key,
                sb.dns_server.address,
                sb.tls.port,
                str(sb.ca_bundle),
                sb.network_ip,
                base,
                CLOSTE_SYNC_DATABASE_URL=f"mysql://root@127.0.0.1:3306/{db.name}",
            )
            daemon = await DaemonProcess.launch(env, "daemon", cwd=base)
            try:
                await daemon.wait_for("ready:", timeout=60)
                await daemon.wait_for("pass:", "; in sync", timeout=60)
                look_from = len(sb.state.requests)
                for i in range(inserts):
                    # A random moment against the daemon's poll, as real changes come.
                    await asyncio.sleep(random.uniform(0, 1.0))
                    domain = f"mapped{i}.bench.example"
                    await add_mapping(db, domain, blog_id=blog_id)  # autocommit: committed
                    committed = time.time()
                    async with asyncio.timeout(30):
                        while True:
                            answered, look_from = add_request_at(sb, domain, look_from)
                            if answered is not None:
                                break
                            await asyncio.sleep(0.005)
                    latencies.append(answered - committed)
            finally:
                await daemon.stop(timeout=15)
    return latencies


# -- figure 5: the add rate at the default limit --------------------------------------------


async def add_rate(adds: int) -> dict[str, float]:
    async with Sandbox.running(cert_delay_s=0) as sb:
        with tempfile.TemporaryDirectory(prefix="cs-bench-") as folder:
            base = Path(folder)
            domains = write_domains_file(base, domain_names(adds, prefix="new"))
            env = sandbox_env(
                sb.api.url,
                sb.api_key,
                sb.dns_server.address,
                sb.tls.port,
                str(sb.ca_bundle),
                sb.network_ip,
                base,
                CLOSTE_SYNC_DOMAINS_FILE_PATH=str(domains),
            )
            loaded = load(env, base)
            closte = loaded.settings.closte
            assert closte.rate_per_second == DEFAULT_RATE, closte.rate_per_second
            assert closte.concurrency == DEFAULT_CONCURRENCY, closte.concurrency
            async with Engine.open(loaded) as engine:
                await engine.read_sources()
                started = time.time()
                report = await engine.run_pass()
                took = time.time() - started
                await engine.store.events.flush()
            done = sum(1 for r in report.results if r.ok and r.operation == "add")
            answered = [r.time for r in sb.state.requests if r.path.endswith("/adddomainalias")]
    return {
        "took": took,
        "done": done,
        "rate": done / took,
        "first_to_last": max(answered) - min(answered) if answered else 0.0,
    }


# -- the report ------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def row(label: str, value: str) -> None:
    print(f"  {label:<44}{value:>16}")


async def run(args: argparse.Namespace) -> int:
    profiler = Profiler(args.profile)
    count = args.domains
    print(f"daemon: {count} domains; starting the sandbox (issuing {count} certificates)")
    async with sandbox_process(count) as info:
        engine = await engine_figures(info, count, profiler)
        memory = None if args.stages_only else await daemon_memory(info, count)
    reason = "left out (--stages-only)" if args.stages_only else await mariadb_available()
    latencies = await insert_to_add(args.inserts) if reason is None else None
    rate = None if args.stages_only else await add_rate(args.adds)

    figures: list[dict[str, Any]] = []
    print(f"Stage checks and passes, {count} domains (engine in this process)")
    row("DNS stage pass (the round's DNS checks)", f"{engine['dns']['due_s']:.2f} s")
    for key, title in (
        ("dns", "round: DNS, then SSL refused"),
        ("ssl", "SSL stage pass (certificates valid)"),
        ("whole", "whole first round (DNS, then SSL)"),
    ):
        part = engine[key]
        row(title, f"{part['wall_s']:.2f} s")
        if part["followed"]:
            row(
                "  DNS checks / SSL checks that followed",
                f"{part['due_s']:.2f} / {part['follow_s']:.2f} s",
            )
        row(
            "  checked; followed; stages after",
            f"{part['checked']}; {part['followed']}; {engine[f'after_{key}']}",
        )
        row(
            "  CPU here (all threads) / in the sandbox",
            f"{part['cpu_s']:.2f} / {part['sandbox_cpu_s']:.2f} s",
        )
        cores = os.cpu_count() or 1
        floor = (part["cpu_s"] + part["sandbox_cpu_s"]) / cores
        row(f"  CPU of both over {cores} cores (a floor)", f"{floor:.2f} s")
        row("  in record_many (overlaps the checks)", f"{part['store_write_s']:.2f} s")
    steady = engine["steady_pass_ms"]
    row(f"steady pass, median of {len(steady)}", f"{statistics.median(steady):.1f} ms")
    row("  min / max", f"{min(steady):.1f} / {max(steady):.1f} ms")
    figures += [
        figure(
            f"daemon.dns_stage_pass_{count}",
            engine["dns"]["due_s"],
            "s",
            GOALS["dns_pass_s"],
            "lower",
        ),
        figure(
            f"daemon.ssl_stage_pass_{count}",
            engine["ssl"]["wall_s"],
            "s",
            GOALS["ssl_pass_s"],
            "lower",
        ),
        figure(f"daemon.first_check_round_{count}", engine["whole"]["wall_s"], "s", None, "lower"),
        figure(
            f"daemon.steady_pass_{count}",
            statistics.median(steady),
            "ms",
            GOALS["steady_pass_ms"],
            "lower",
        ),
    ]
    if memory is not None:
        print(f"Daemon process holding {count} domains")
        row("VmHWM once in sync", f"{memory['in_sync_hwm_mb']:.1f} MB")
        row("VmHWM after the first round of checks", f"{memory['checked_hwm_mb']:.1f} MB")
        row("VmRSS then", f"{memory['rss_mb']:.1f} MB")
        figures.append(
            figure(
                f"daemon.peak_rss_{count}",
                memory["checked_hwm_mb"],
                "MB",
                GOALS["peak_rss_mb"],
                "lower",
            )
        )
    if latencies is None:
        print(f"MariaDB INSERT to Closte add: not measured ({reason})")
    else:
        print(f"MariaDB INSERT to the sandbox's add, {len(latencies)} rows (daemon defaults)")
        row("p50", f"{percentile(latencies, 0.5):.3f} s")
        row("p99", f"{percentile(latencies, 0.99):.3f} s")
        row("max", f"{max(latencies):.3f} s")
        figures += [
            figure("daemon.insert_to_add_p50", percentile(latencies, 0.5), "s", None, "lower"),
            figure(
                "daemon.insert_to_add_p99",
                percentile(latencies, 0.99),
                "s",
                GOALS["insert_to_add_p99_s"],
                "lower",
            ),
        ]
    if rate is not None:
        ratio = rate["rate"] / DEFAULT_RATE
        bound = args.adds / max(1, args.adds - DEFAULT_CONCURRENCY)
        print(f"Adds at the default limit ({DEFAULT_RATE:g}/s, concurrency {DEFAULT_CONCURRENCY})")
        row("adds done", f"{rate['done']} of {args.adds}")
        row("pass time", f"{rate['took']:.2f} s")
        row("achieved rate", f"{rate['rate']:.3f} /s")
        row("ratio to configured (goal >= 0.95)", f"{ratio:.3f}")
        row("bound from the limiter's burst", f"{bound:.3f}")
        figures.append(
            figure(
                f"daemon.add_rate_ratio_{args.adds}",
                ratio,
                "ratio",
                GOALS["add_rate_ratio"],
                "higher",
            )
        )
    for label, text in profiler.reports.items():
        if not label.startswith("steady_pass_") or label == "steady_pass_0":
            print(f"-- profile: {label}\n{text}")
    for item in figures:
        print(json.dumps(item))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=10_000, help="figures 1-3 and 6")
    parser.add_argument("--inserts", type=int, default=50, help="figure 4")
    parser.add_argument("--adds", type=int, default=200, help="figure 5")
    parser.add_argument("--quick", action="store_true", help="40 adds for figure 5")
    parser.add_argument(
        "--stages-only",
        action="store_true",
        help="only figures 1-3 (the stage passes and the steady pass)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print where the measured calls spend time"
    )
    args = parser.parse_args()
    if args.quick:
        args.adds = min(args.adds, 40)
    for name in ("domains", "inserts", "adds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
