"""`closte-sync demo`: the main job, start to finish, on the built-in sandbox.

It starts the sandbox (Closte's API, a TLS edge and DNS on loopback), lays out a small
WordPress multisite beside it (wp-config.php with the API key, the SQLite database of
WordPress's SQLite integration, a domains file), then does what the daemon does: reads
the configuration from wp-config.php, runs the doctor's checks, reads both sources and
reconciles them with Closte, recording every step in the store. With ``--watch`` it keeps
going, reconciling on every change of the sources, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.config import LoadedConfig, load_config
from closte_sync.daemon.doctor import DoctorContext, Status, run_checks
from closte_sync.daemon.events import EventSink, Level
from closte_sync.daemon.reconcile import PassReport, reconcile_once
from closte_sync.daemon.sources.base import DesiredDomain, SourceSnapshot
from closte_sync.daemon.sources.database.source import DatabaseSource
from closte_sync.daemon.sources.domains_file import DomainsFileSource
from closte_sync.daemon.store import EventFilter, Store, open_store
from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.wordpress import build_network
from closte_sync.shared.domains import display

SITES = ("shop.network.sandbox.test", "blog.network.sandbox.test")
MAPPINGS = (("shop-example.test", 2), ("bücher-laden.test", 3))
DOMAINS_FILE = """# Domains kept on Closte besides the network's mappings (one per line).
landing.example.test
*.campaigns.example.test   # a wildcard alias
not a domain               # a bad line: reported with its place, the rest still count
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--watch",
        action="store_true",
        help="keep reconciling on every change of the sources until Ctrl-C",
    )
    parser.add_argument(
        "--dir", type=Path, help="lay out the sample network here (default: a temp folder)"
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args.watch, args.dir))


async def _demo(watch: bool, folder: Path | None) -> int:
    with contextlib.ExitStack() as stack:
        base = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cs-demo-")))
        async with Sandbox.running(cert_delay_s=5.0) as sandbox:
            _say("sandbox", f"Closte API {sandbox.api.url}, DNS {sandbox.dns_server.address}")
            root = base / "wordpress"
            build_network(
                root,
                api_key=sandbox.api_key,
                main_domain=sandbox.network_host,
                sites=SITES,
                mappings=MAPPINGS,
            )
            (base / "domains.txt").write_text(DOMAINS_FILE)
            _say("network", f"WordPress multisite laid out in {root}")
            loaded = load_config(
                cwd=root,
                env=_sandbox_env(sandbox, base),
                default_config_path=base / "no-config.toml",
            )
            if not await _doctor(root, sandbox, base):
                return 1
            return await _sync(loaded, watch)
    return 0


def _sandbox_env(sandbox: Sandbox, base: Path) -> dict[str, str]:
    """Only what differs from a real Closte server; the rest comes from wp-config.php."""
    return {
        "CLOSTE_SYNC_CLOSTE_BASE_URL": sandbox.api.url,
        "CLOSTE_SYNC_DOMAINS_FILE_PATH": str(base / "domains.txt"),
        "CLOSTE_SYNC_STORE_PATH": str(base / "state" / "closte-sync.sqlite3"),
        "CLOSTE_SYNC_SOCKET_PATH": str(base / "run" / "control.sock"),
        "CLOSTE_SYNC_CHECKS_NAMESERVERS": sandbox.dns_server.address,
        "CLOSTE_SYNC_CHECKS_TLS_PORT": str(sandbox.tls.port),
        "CLOSTE_SYNC_CHECKS_CA_BUNDLE": str(sandbox.ca_bundle),
        "CLOSTE_SYNC_CHECKS_NETWORK_IPS": sandbox.network_ip,
    }


async def _doctor(root: Path, sandbox: Sandbox, base: Path) -> bool:
    context = DoctorContext(
        config_path=None,
        env=_sandbox_env(sandbox, base),
        cwd=root,
        default_config_path=base / "no-config.toml",
    )
    results = await run_checks(context)
    for result in results:
        _say("doctor", f"{result.status.value.upper():4}  {result.name}: {result.detail}")
        if result.status is Status.FAIL:
            _say("doctor", f"      fix: {result.fix}")
    return all(r.status is Status.PASS for r in results)


async def _sync(loaded: LoadedConfig, watch: bool) -> int:
    settings = loaded.settings
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(settings.store)
        stack.push_async_callback(store.aclose)
        store.register_secret(settings.closte.api_key)
        events: EventSink = store.events
        # The sample network's sites were made just now, as if closte-sync had watched the
        # network from its start: every site after the main one (blog 1) is new.
        database = DatabaseSource(settings.database, settings.wordpress, events, new_sites_after=1)
        stack.push_async_callback(database.aclose)
        sources: list[DatabaseSource | DomainsFileSource] = [database]
        file_source = DomainsFileSource.from_settings(settings.domains_file, events)
        if file_source is not None:
            stack.push_async_callback(file_source.aclose)
            sources.append(file_source)
        closte = await stack.enter_async_context(ClosteClient(settings.closte, events=events))

        latest: dict[str, SourceSnapshot] = {}
        async for snapshot in _merged_watch(sources, once=not watch):
            latest[snapshot.source] = snapshot
            _show_snapshot(snapshot)
            if len(latest) < len(sources):
                continue  # wait until every source has spoken once
            desired = _desired(latest.values())
            unhealthy = [s for s in latest.values() if not s.healthy]
            report = await reconcile_once(
                desired, closte, store, settings.guard, events, unhealthy=unhealthy
            )
            _show_report(report)
        await store.events.flush()
        await _show_events(store)
        listed = await closte.list_aliases()
        _say("closte", f"Closte now holds {len(listed.domains)} aliases:")
        for name in listed.domains:
            _say("closte", f"  {display(name)}")
    return 0


async def _merged_watch(
    sources: list[DatabaseSource | DomainsFileSource], *, once: bool
) -> AsyncIterator[SourceSnapshot]:
    """Snapshots from all sources as they come (one read each when ``once``)."""
    if once:
        for source in sources:
            yield await source.read()
        return
    queue: asyncio.Queue[SourceSnapshot] = asyncio.Queue()

    async def pump(source: DatabaseSource | DomainsFileSource) -> None:
        async for snapshot in source.watch():
            await queue.put(snapshot)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    _say("watch", "watching the database and the domains file; Ctrl-C stops")
    tasks = [asyncio.create_task(pump(source)) for source in sources]
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()
            stopper.cancel()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _desired(snapshots: Iterable[SourceSnapshot]) -> Mapping[str, DesiredDomain]:
    desired: dict[str, DesiredDomain] = {}
    for snapshot in snapshots:
        for name, domain in snapshot.domains.items():
            desired.setdefault(name, domain)
    return desired


def _show_snapshot(snapshot: SourceSnapshot) -> None:
    state = "healthy" if snapshot.healthy else "UNHEALTHY (last good set kept)"
    _say(snapshot.source, f"{len(snapshot.domains)} domains, {state}")
    for domain in snapshot.domains.values():
        _say(snapshot.source, f"  {display(domain.name)}  ({domain.place})")
    for problem in snapshot.problems:
        _say(snapshot.source, f"  {problem.level.value}: {problem}")


def _show_report(report: PassReport) -> None:
    if report.error:
        _say("reconcile", report.error)
        return
    plan = report.plan
    assert plan is not None
    _say(
        "reconcile", f"plan: add {len(plan.add)}, remove {len(plan.remove)}, keep {len(plan.keep)}"
    )
    for result in report.results:
        line = f"  {result.operation} {display(result.domain or '')}: {result.kind}"
        if not result.ok and result.hint is not None:
            line += f" (hint: {result.hint.title})"
        _say("reconcile", line)


async def _show_events(store: Store) -> None:
    page = await store.event_log.page(EventFilter(min_level=Level.INFO), limit=8)
    _say("events", f"latest events in {store.path}:")
    for event in reversed(page):
        _say("events", f"  [{event.level.value}] {event.kind}: {event.message}")


def _say(topic: str, text: str) -> None:
    print(f"{topic:>12} | {text}", flush=True)
