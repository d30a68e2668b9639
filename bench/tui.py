"""Benchmark: the TUI against a store of a million events, and what following costs.

Figures:
  - Start: from ``ClosteSyncApp`` starting headless (160x48) on the real daemon's socket,
    store holding 1,000,000 events, to the Logs screen's first page painted (goal <= 1 s).
    The Logs screen is asked for at once; "painted" is the compositor drawing an event row
    in the log view (not the page merely loaded). Median of a few starts, worst beside it.
  - Filter: typing a domain into the Logs screen's domain field, from the last key to the
    filtered first page painted (goal <= 200 ms); median over several domains, worst beside.
  - Follow: events emitted at 1,000/s for 60 s while a TUI follows; the delay from each
    event's emission to the log view painting it, or a newer event (lines a burst scrolls
    past are never painted). p50, p99, and p99 of the first and the last 10 s (not growing;
    goal p99 <= 1 s). The real daemon makes events only from the work it really does, so
    this figure uses the daemon's own parts in a separate process: a real ControlServer and
    ControlHub over the same million-event store, the hub emitting at the set rate. Each
    event carries its seq and time.monotonic() (one clock for both processes).
  - Memory: VmRSS of the real daemon (from /proc) while 5 headless TUI processes follow its
    log and a domains-file edit makes it work (new names added to Closte, checked, done);
    the highest sample and VmHWM (goal <= 200 MB), beside the RSS before the TUIs came.

Runs the sandbox, the daemon and every client on loopback and in a temporary folder.

    python bench/tui.py [--events 1000000] [--seconds 60] [--rate 1000] [--tuis 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _figures import figure, print_figures
from _tui_setup import (
    DOMAINS,
    FOLLOW_KIND,
    ROOT,
    SIZE,
    STAMP,
    PaintProbe,
    domain_name,
    fill_store,
    follow_stamps,
    follow_worker,
    make_app,
    newest_of,
    serve,
)
from daemon_harness import DaemonProcess, Site, lay_out
from textual.widgets import Input

from closte_sync.sandbox.runner import Sandbox
from closte_sync.tui.widgets.log_view import LogView

GOALS = {"start_s": 1.0, "filter_s": 0.2, "follow_p99_s": 1.0, "rss_mb": 200.0}
STARTS = 3
FILTERS = 8
CHURN_NAMES = 200
TIMEOUT_S = 120.0
PROFILE_S = 10.0


# -- 1. start to first page ---------------------------------------------------------------


async def start_to_first_page(socket_path: Path, newest: int) -> float:
    started = time.monotonic()
    app = make_app(socket_path)
    async with app.run_test(size=SIZE) as pilot:
        probe = PaintProbe(app.main.query_one(LogView))
        await pilot.press("2")
        # The newest event painted: the first page is the right one, not a partial view.
        painted = await probe.wait(lambda p: p.event.id == newest, TIMEOUT_S)
        return painted.at - started


# -- 2. filter by domain ------------------------------------------------------------------


async def filter_latencies(socket_path: Path, store: Path, count: int) -> list[float]:
    app = make_app(socket_path)
    took = []
    async with app.run_test(size=SIZE) as pilot:
        view = app.main.query_one(LogView)
        probe = PaintProbe(view)
        await pilot.press("2")
        await probe.wait(lambda p: True, TIMEOUT_S)
        field = app.main.query_one("#log-domain", Input)
        for n in range(count):
            domain = domain_name(n * 97 % DOMAINS)
            newest = newest_of(store, domain)
            field.value = ""
            field.focus()
            await pilot.press(*domain[:-1])
            await pilot.pause()
            mark = len(probe.painted)
            sent = time.monotonic()
            await pilot.press(domain[-1])
            painted = await probe.wait(
                lambda p, d=domain, i=newest: p.event.domain == d and p.event.id == i,
                TIMEOUT_S,
                since=mark,
            )
            took.append(painted.at - sent)
            wrong = [p for p in probe.painted if p.generation == painted.generation]
            bad = [
                (p.event.id, p.event.domain, p.event.kind)
                for p in wrong
                if p.event.domain != domain
            ]
            assert not bad, f"unfiltered rows painted for {domain}: {bad[:5]} of {len(bad)}"
    return took


# -- 3. following at a steady rate --------------------------------------------------------


async def follow_latencies(
    store: Path, folder: Path, rate: int, seconds: float, profiled: bool = False
) -> tuple[list[float], list[float], list[float], str]:
    """Delays of all events, of the first and of the last 10 s; with ``profiled``, the
    TUI's side runs under cProfile (which slows it: its delays are not the figure)."""
    socket_path = folder / f"follow-{time.monotonic_ns()}.sock"
    first_id = newest_of(store)
    harness = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        str(store),
        str(socket_path),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert harness.stdin is not None and harness.stdout is not None
    profile = cProfile.Profile()
    try:
        line = await asyncio.wait_for(harness.stdout.readline(), TIMEOUT_S)
        if line.strip() != b"ready":
            raise RuntimeError(f"the follow harness did not start: {line!r}")
        app = make_app(socket_path)
        async with app.run_test(size=SIZE) as pilot:
            probe = PaintProbe(app.main.query_one(LogView))
            await pilot.press("2")
            await probe.wait(lambda p: True, TIMEOUT_S)
            harness.stdin.write(b"go\n")
            await harness.stdin.drain()
            if profiled:
                profile.enable()
            done = await asyncio.wait_for(harness.stdout.readline(), seconds + TIMEOUT_S)
            ended = time.monotonic()
            total = int(done.split()[1])
            # Not shown in time: reported below, those events counted at their lower bound.
            with contextlib.suppress(TimeoutError):
                await probe.wait(
                    lambda p: (
                        p.event.kind == FOLLOW_KIND and f"seq={total - 1} " in p.event.message
                    ),
                    TIMEOUT_S,
                )
            gave_up = time.monotonic()
            profile.disable()
        harness.stdin.close()
        await asyncio.wait_for(harness.wait(), TIMEOUT_S)
    finally:
        if harness.returncode is None:
            harness.kill()
            await harness.wait()

    # When each seq was first on screen: the first paint of it or of any newer seq.
    reached: list[tuple[int, float]] = []  # (highest seq painted so far, when)
    top = -1
    for p in probe.painted:
        found = STAMP.search(p.event.message) if p.event.kind == FOLLOW_KIND else None
        if found and int(found[1]) > top:
            top = int(found[1])
            reached.append((top, p.at))
    during = sum(1 for seq, at in reached if at <= ended)
    print(
        f"  {len(reached)} paints moved the newest line on screen forward;"
        f" {during} of them while events were still arriving"
    )
    stamps = follow_stamps(store, first_id)
    delays: list[tuple[float, float]] = []  # (emitted, delay)
    index = 0
    missing = 0
    for seq in sorted(stamps):
        while index < len(reached) and reached[index][0] < seq:
            index += 1
        if index < len(reached):
            delays.append((stamps[seq], reached[index][1] - stamps[seq]))
        else:  # never on screen: at least until the bench stopped waiting
            missing += 1
            delays.append((stamps[seq], gave_up - stamps[seq]))
    if missing:
        print(f"  {missing} events were not on screen {TIMEOUT_S:.0f} s after the last was sent")
    first_at = delays[0][0]
    last_at = delays[-1][0]
    early = [d for at, d in delays if at < first_at + 10]
    late = [d for at, d in delays if at >= last_at - 10]
    text = io.StringIO()
    if not profiled:
        return [d for _, d in delays], early, late, ""
    stats = pstats.Stats(profile, stream=text).sort_stats("cumulative")
    stats.print_stats(14)
    stats.print_stats(re.escape(str(ROOT)), 14)  # the project's own functions
    return [d for _, d in delays], early, late, text.getvalue()


# -- 4. the daemon's memory with followers ------------------------------------------------


def rss_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM of ``pid`` in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


async def rss_with_followers(
    site: Site, daemon: DaemonProcess, tuis: int, seconds: float
) -> dict[str, float]:
    pid = daemon.process.pid
    before, _ = rss_mb(pid)
    socket_path = site.base / "run" / "control.sock"
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--follow-worker",
            str(socket_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(tuis)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), TIMEOUT_S)
            if line.strip() != b"following":
                raise RuntimeError(f"a following TUI did not start: {line!r}")
        following, _ = rss_mb(pid)
        # Work the daemon really does: new names in the domains file, added, checked, done.
        names = [f"churn{i}.bench.test" for i in range(CHURN_NAMES)]
        site.point_at_network(*names)
        first_id = newest_of(site.store_path)
        mark = len(daemon.lines)
        with site.domains_file.open("a") as handle:
            handle.write("".join(f"{name}\n" for name in names))
        peak = following
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid)[0])
            await asyncio.sleep(0.25)  # a sampling period, not a synchronisation
        last, hwm = rss_mb(pid)
        done = sum("Marking domain as done" in line for line in daemon.lines[mark:])
        return {
            "before": before,
            "following": following,
            "peak": max(peak, last),
            "hwm": hwm,
            "events": float(newest_of(site.store_path) - first_id),
            "done": float(done),
        }
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()
        for worker in workers:
            try:
                await asyncio.wait_for(worker.wait(), 30)
            except TimeoutError:
                worker.kill()
                await worker.wait()


# -- report -------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main(events: int, seconds: float, rate: int, tuis: int) -> int:
    with tempfile.TemporaryDirectory(prefix="closte-tui-bench-") as folder:
        base = Path(folder)
        async with Sandbox.running(cert_delay_s=0) as sandbox:
            site = lay_out(sandbox, base)
            started = time.monotonic()
            await fill_store(site.store_path, events)
            print(f"store ready: {events:,} events in {time.monotonic() - started:.1f} s")
            daemon = await DaemonProcess.start(site)
            try:
                await daemon.wait_for("ready:", timeout=TIMEOUT_S)
                socket_path = site.base / "run" / "control.sock"
                newest = newest_of(site.store_path)
                starts = [await start_to_first_page(socket_path, newest) for _ in range(STARTS)]
                print(f"start to first page: {', '.join(f'{s:.3f}' for s in starts)} s")
                filters = await filter_latencies(socket_path, site.store_path, FILTERS)
                print(f"filter by domain: {', '.join(f'{s * 1000:.0f}' for s in filters)} ms")
                memory = await rss_with_followers(site, daemon, tuis, min(seconds, 60))
                print(
                    f"daemon RSS: {memory['before']:.1f} MB alone, {memory['following']:.1f} MB"
                    f" with {tuis} TUIs following, peak {memory['peak']:.1f} MB while"
                    f" {memory['events']:.0f} events were written ({memory['done']:.0f} of"
                    f" {CHURN_NAMES} new names done)"
                )
            finally:
                code = await daemon.stop(timeout=30)
                if code not in (0, None):
                    print(f"the daemon exited {code}:\n{daemon.text[-2000:]}", file=sys.stderr)
        print(f"following {rate}/s for {seconds:.0f} s ...")
        delays, early, late, _ = await follow_latencies(site.store_path, base, rate, seconds)
        profile = ""
        if percentile(delays, 0.99) > GOALS["follow_p99_s"]:
            print(f"following again for {PROFILE_S:.0f} s under cProfile ...")
            *_, profile = await follow_latencies(
                site.store_path, base, rate, min(seconds, PROFILE_S), profiled=True
            )

    p99 = percentile(delays, 0.99)
    figures = [
        figure("tui_start_to_first_page", statistics.median(starts), "s", GOALS["start_s"]),
        figure("tui_start_to_first_page_worst", max(starts), "s", None),
        figure("tui_filter_by_domain", statistics.median(filters), "s", GOALS["filter_s"]),
        figure("tui_filter_by_domain_worst", max(filters), "s", None),
        figure("tui_follow_delay_p50", percentile(delays, 0.5), "s", None),
        figure("tui_follow_delay_p99", p99, "s", GOALS["follow_p99_s"]),
        figure("tui_follow_delay_p99_first_10s", percentile(early, 0.99), "s", None),
        figure("tui_follow_delay_p99_last_10s", percentile(late, 0.99), "s", None),
        figure("daemon_rss_alone", memory["before"], "MB", None),
        figure(f"daemon_rss_{tuis}_tuis_peak", memory["peak"], "MB", GOALS["rss_mb"]),
        figure(f"daemon_vmhwm_{tuis}_tuis", memory["hwm"], "MB", GOALS["rss_mb"]),
    ]
    if profile:
        print("\nwhere the following TUI spent its time (cProfile, cumulative):")
        print(profile)

    print_figures(figures, width=34)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--tuis", type=int, default=5)
    parser.add_argument("--serve", nargs=2, metavar=("STORE", "SOCKET"), help=argparse.SUPPRESS)
    parser.add_argument("--follow-worker", metavar="SOCKET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve[0]), Path(args.serve[1]), args.rate, args.seconds))
        raise SystemExit(0)
    if args.follow_worker:
        asyncio.run(follow_worker(Path(args.follow_worker)))
        raise SystemExit(0)
    raise SystemExit(asyncio.run(main(args.events, args.seconds, args.rate, args.tuis)))
