"""The engine: everything one reconcile pass and one round of stage checks need.

``closte-sync once`` opens an engine, reads each source once, runs a pass and a round of
checks; ``closte-sync daemon`` keeps one open and drives it from the sources' watches and a
timer. Both share this module, so there is one definition of a pass.

The effective check interval is, in order: the value an operator set live (the store's
``checks.interval_s``), the plugin's ``dns_check_interval`` network setting, the config file
(or environment), 300 s. ``interval()`` says which one won.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from closte_sync.daemon.checks import DnsChecker, DnsResolver, NetworkTarget, TlsChecker
from closte_sync.daemon.closte.client import ClosteClient
from closte_sync.daemon.config import LoadedConfig
from closte_sync.daemon.control.hub import ControlHub
from closte_sync.daemon.events import EventSink, Level, make_event
from closte_sync.daemon.reconcile import CallGate, PassReport, reconcile_once
from closte_sync.daemon.service.console import TeeSink
from closte_sync.daemon.service.stage_runner import RoundReport, StageLimits, StageRunner
from closte_sync.daemon.settings import DEFAULT_INTERVAL_S, MAX_INTERVAL_S, MIN_INTERVAL_S
from closte_sync.daemon.sources.base import DesiredDomain, Source, SourceProblem, SourceSnapshot
from closte_sync.daemon.sources.database.source import DatabaseSource
from closte_sync.daemon.sources.domains_file import DomainsFileSource
from closte_sync.daemon.store import Stage, Store, open_store

INTERVAL_KEY = "checks.interval_s"
DNS_TRIES_KEY = "checks.dns_tries"
SSL_TRIES_KEY = "checks.ssl_tries"
SITES_MARK_KEY = "database.sites_mark"
PLUGIN_INTERVAL_FACT = "dns_check_interval"
TRIES_RANGE = (1, 100)

Origin = Literal["operator", "plugin", "config", "default"]


@dataclass(frozen=True)
class EffectiveValue:
    value: int
    origin: Origin

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "origin": self.origin}


def clamp_interval(value: int) -> int:
    return max(MIN_INTERVAL_S, min(MAX_INTERVAL_S, value))


class LeaderGate(CallGate, Protocol):
    async def confirm(self) -> bool:
        """Whether this daemon still leads (and may write stages back)."""
        ...


class Engine:
    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        closte: ClosteClient,
        sources: list[Source],
        database: DatabaseSource | None,
        runner: StageRunner,
        events: TeeSink,
        hub: ControlHub,
    ) -> None:
        self.loaded = loaded
        self.settings = loaded.settings
        self.store = store
        self.closte = closte
        self.sources = sources
        self.database = database
        self.runner = runner
        self.events = events
        self.hub = hub
        self.snapshots: dict[str, SourceSnapshot] = {}
        # Called when a domain's checks become due outside the check loop's schedule.
        self.on_checks_due: Callable[[], None] = lambda: None
        # Several nodes on one database: the leader's gate around every Closte call and
        # stage write-back (set by the daemon when [cluster] is on; None: act alone).
        self.gate: LeaderGate | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, loaded: LoadedConfig, sinks: Iterable[EventSink] = ()
    ) -> AsyncIterator[Engine]:
        """Open the store, the Closte client, the sources and the checkers; close them all
        on the way out, whatever happens."""
        settings = loaded.settings
        async with contextlib.AsyncExitStack() as stack:
            store = await open_store(settings.store)
            stack.push_async_callback(store.aclose)
            store.register_secret(settings.closte.api_key)
            if settings.database.connection is not None:
                store.register_secret(settings.database.connection.password)
            # Every event goes to the store's writer and to the socket's subscribers.
            hub = ControlHub(store.events)
            events = TeeSink(hub, *sinks)
            closte = await stack.enter_async_context(ClosteClient(settings.closte, events=events))
            sources: list[Source] = []
            database: DatabaseSource | None = None
            if settings.database.connection is not None:
                mark = await store.settings.get(SITES_MARK_KEY)
                database = DatabaseSource(
                    settings.database,
                    settings.wordpress,
                    events,
                    new_sites_after=int(mark.value) if mark is not None else None,
                )
                stack.push_async_callback(database.aclose)
                sources.append(database)
            file_source = DomainsFileSource.from_settings(settings.domains_file, events)
            if file_source is not None:
                stack.push_async_callback(file_source.aclose)
                sources.append(file_source)
            resolver = DnsResolver.from_settings(settings.checks)
            stack.callback(resolver.close)
            target = await NetworkTarget.discover(settings.checks, settings.wordpress, resolver)
            for problem in target.problems:
                events.emit(make_event(Level.WARNING, "checks", problem))
            dns = DnsChecker(settings.checks, target, resolver=resolver)
            tls = TlsChecker(settings.checks)
            engine: Engine
            write_back = None
            if database is not None and settings.database.write_back:

                async def write_back(name: str, stage: Stage, secure: bool) -> None:
                    await engine.write_stage(name, stage, secure)

            runner = StageRunner(store, dns, tls, events, write_back=write_back)
            engine = cls(loaded, store, closte, sources, database, runner, events, hub)
            yield engine
            await store.events.flush()

    # -- sources ---------------------------------------------------------------------------

    async def take(self, snapshot: SourceSnapshot) -> None:
        """A source's newest snapshot; the database's also moves the new-site mark."""
        self.snapshots[snapshot.source] = snapshot
        if self.database is not None and snapshot.source == self.database.name:
            mark = self.database.sites_mark
            stored = await self.store.settings.get(SITES_MARK_KEY)
            if mark is not None and (stored is None or stored.value != mark):
                await self.store.settings.set(SITES_MARK_KEY, mark, set_by="daemon")

    async def read_sources(self) -> None:
        for source in self.sources:
            await self.take(await source.read())

    def desired(self) -> dict[str, DesiredDomain]:
        """Every source's domains; for a name two sources want, the database's row wins
        (it carries the mapping id write-back needs)."""
        merged: dict[str, DesiredDomain] = {}
        for name in sorted(self.snapshots, key=lambda n: n != "database"):
            for domain_name, domain in self.snapshots[name].domains.items():
                merged.setdefault(domain_name, domain)
        return merged

    def unhealthy(self) -> list[SourceSnapshot]:
        """Sources that cannot be read now, and those not heard from yet: no domain they
        brought may be removed until they speak."""
        silent = [
            SourceSnapshot(
                source=s.name,
                domains={},
                healthy=False,
                problems=(SourceProblem(s.name, "not read yet"),),
            )
            for s in self.sources
            if s.name not in self.snapshots
        ]
        return [s for s in self.snapshots.values() if not s.healthy] + silent

    # -- settings that operators change live ------------------------------------------------

    async def interval(self) -> EffectiveValue:
        operator = await self.store.settings.get(INTERVAL_KEY)
        if operator is not None and isinstance(operator.value, int):
            return EffectiveValue(clamp_interval(operator.value), "operator")
        database = self.snapshots.get("database")
        plugin = database.facts.get(PLUGIN_INTERVAL_FACT) if database is not None else None
        if isinstance(plugin, int):
            return EffectiveValue(clamp_interval(plugin), "plugin")
        origin = self.loaded.origins.get("checks.interval_s")
        if origin is not None and origin.kind != "default":
            return EffectiveValue(clamp_interval(self.settings.checks.interval_s), "config")
        return EffectiveValue(DEFAULT_INTERVAL_S, "default")

    async def tries(self) -> tuple[EffectiveValue, EffectiveValue]:
        values = []
        for key, configured in (
            (DNS_TRIES_KEY, self.settings.checks.dns_tries),
            (SSL_TRIES_KEY, self.settings.checks.ssl_tries),
        ):
            operator = await self.store.settings.get(key)
            if operator is not None and isinstance(operator.value, int):
                values.append(EffectiveValue(operator.value, "operator"))
            else:
                origin = self.loaded.origins.get(key)
                from_config = origin is not None and origin.kind != "default"
                values.append(EffectiveValue(configured, "config" if from_config else "default"))
        return values[0], values[1]

    async def limits(self) -> StageLimits:
        dns_tries, ssl_tries = await self.tries()
        return StageLimits((await self.interval()).value, dns_tries.value, ssl_tries.value)

    async def set_value(self, key: str, value: int, by: str) -> str:
        """An operator's live setting: interval (10..300 s) or a tries limit."""
        if key in ("interval", "interval_s", INTERVAL_KEY):
            if not MIN_INTERVAL_S <= value <= MAX_INTERVAL_S:
                raise ValueError(
                    f"interval {value}: must be {MIN_INTERVAL_S} to {MAX_INTERVAL_S} seconds"
                )
            await self.store.settings.set(INTERVAL_KEY, value, set_by=by)
            moved = await self.store.stages.reschedule(value)
            return f"check interval set to {value} s; {moved} waiting check(s) moved up"
        names = {"dns_tries": DNS_TRIES_KEY, "dns-tries": DNS_TRIES_KEY}
        names |= {"ssl_tries": SSL_TRIES_KEY, "ssl-tries": SSL_TRIES_KEY}
        stored = names.get(key, key if key in (DNS_TRIES_KEY, SSL_TRIES_KEY) else None)
        if stored is None:
            raise ValueError(f"{key}: not a live setting (interval, dns-tries, ssl-tries)")
        low, high = TRIES_RANGE
        if not low <= value <= high:
            raise ValueError(f"{key} {value}: must be {low} to {high}")
        await self.store.settings.set(stored, value, set_by=by)
        return f"{key} set to {value}"

    # -- the work ------------------------------------------------------------------------

    async def run_pass(
        self,
        *,
        dry_run: bool = False,
        upsert_only: bool = False,
        release: str | None = None,
    ) -> PassReport:
        desired = self.desired()
        report = await reconcile_once(
            desired,
            self.closte,
            self.store,
            self.settings.guard,
            self.events,
            release=release,
            unhealthy=self.unhealthy(),
            upsert_only=upsert_only,
            dry_run=dry_run,
            workers=self.settings.closte.concurrency,
            on_added=lambda name: self._start_checks(desired, name),
            gate=self.gate,
        )
        if report.error is None and not dry_run:
            await self._track_stages(desired, report)
            changed = {r.domain for r in report.results if r.domain is not None}
            for name in changed | {*report.adopted, *report.missing, *report.landed}:
                self.hub.domain_changed(name)
        return report

    async def _start_checks(self, desired: Mapping[str, DesiredDomain], name: str) -> None:
        """Closte accepted the add: the domain's checks start now, not after the batch."""
        wanted = desired.get(name)
        stage = Stage.DONE if wanted is not None and wanted.stage == Stage.DONE else None
        if await self.store.stages.begin(name, stage or Stage.CHECKING_DNS):
            self.hub.domain_changed(name)
            self.on_checks_due()

    async def _track_stages(self, desired: Mapping[str, DesiredDomain], report: PassReport) -> None:
        """Checks start as soon as Closte holds a desired domain."""
        held = set(report.held_before)
        for result in report.results:
            if result.ok and result.domain is not None:
                if result.operation == "add":
                    held.add(result.domain)
                elif result.operation == "remove":
                    held.discard(result.domain)
        starts = {
            name: Stage.DONE if desired[name].stage == Stage.DONE else Stage.CHECKING_DNS
            for name in held
            if name in desired
        }
        started, dropped = await self.store.stages.track(starts)
        for name in (*started, *dropped):
            self.hub.domain_changed(name)

    async def run_checks(self) -> RoundReport:
        report = await self.runner.run_due(await self.limits())
        for name in report.domains:
            self.hub.domain_changed(name)
        return report

    async def retry(self, domain: str) -> str:
        entry = await self.store.ledger.retry(domain)
        stage = await self.store.stages.restart(entry.domain)
        parts = [f"{entry.domain}: {entry.state}"]
        if stage is not None:
            parts.append("checks start again from DNS")
        return "; ".join(parts)

    async def write_stage(self, name: str, stage: Stage, secure: bool) -> None:
        if self.database is None:
            return
        if self.gate is not None and not await self.gate.confirm():
            return  # only the leader writes stages back
        wanted = self.desired().get(name)
        if wanted is None or wanted.origin not in ("database", "site"):
            return  # the domains file's names have no row to write to
        ids = [wanted.mapping_id] if wanted.mapping_id is not None else None
        await self.database.write_stage(name, stage.value, secure, mapping_ids=ids)
