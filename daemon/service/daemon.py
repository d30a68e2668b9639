"""`closte-sync daemon`: the engine run as a service until it is stopped.

- Every source is watched under a supervisor: a watch that dies (an unreadable folder,
  inotify watches exhausted, a bug) makes its source unhealthy at once (so nothing it
  brought is removed), says why, and is restarted with backoff.
- A change triggers a pass, debounced: a burst of edits is one pass, at most ``debounce_s``
  later. A full pass also runs every ``[closte] resync_s`` to repair drift made by hand on
  the dashboard, and when a domain's backoff ends. Only one pass runs at a time.
- Stage checks run when they are due; a changed interval (an operator's, the plugin's
  setting, a reloaded config) moves waiting checks at once.
- SIGTERM and SIGINT stop it: no new call starts, the pass in flight gets ``grace_s`` to
  finish its calls, then everything closes. SIGHUP reloads the configuration.
- systemd: READY=1 once every source has spoken, STATUS= lines, WATCHDOG=1 pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from closte_sync.daemon.cluster import Leadership, Role
from closte_sync.daemon.config import ConfigError, LoadedConfig
from closte_sync.daemon.control.server import ControlServer, ControlServerError
from closte_sync.daemon.events import EventSink, Level, make_event
from closte_sync.daemon.metrics.service import open_metrics
from closte_sync.daemon.plan import HeldRemovals
from closte_sync.daemon.reconcile import PassReport
from closte_sync.daemon.service.actions import DaemonControl
from closte_sync.daemon.service.engine import Engine
from closte_sync.daemon.service.notify import Notifier
from closte_sync.daemon.service.prune_schedule import LOOK_EVERY_S, PRUNE_EVERY_S, PruneSchedule
from closte_sync.daemon.service.supervisor import SourceSupervisor
from closte_sync.daemon.sources.base import Source, SourceSnapshot

KIND = "daemon"


@dataclass(frozen=True)
class ServiceTiming:
    debounce_s: float = 0.25
    grace_s: float = 4.0
    first_read_s: float = 30.0  # how long READY waits for every source's first word
    restart_base_s: float = 1.0
    restart_max_s: float = 60.0
    prune_every_s: float = PRUNE_EVERY_S


@dataclass
class LiveState:
    """What the daemon knows about itself, for status lines, the socket and the TUI."""

    started_at: float = field(default_factory=time.time)
    passes: int = 0
    last_pass_at: float | None = None
    last_good_pass_at: float | None = None
    last_pass_error: str | None = None
    pass_running: bool = False
    held_plan: HeldRemovals | None = None
    released_plan: str | None = None
    last_report: PassReport | None = None


class Daemon:
    def __init__(
        self,
        load: Callable[[], LoadedConfig],
        *,
        sinks: tuple[EventSink, ...] = (),
        timing: ServiceTiming | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        """``load`` reads the configuration (again on SIGHUP)."""
        self._load = load
        self._sinks = sinks
        self.timing = timing or ServiceTiming()
        self.notifier = notifier or Notifier()
        self.live = LiveState()
        self.engine: Engine | None = None
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._trigger = asyncio.Event()
        self._checks_wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        self._control: DaemonControl | None = None
        # [cluster] on: who acts among the nodes on one database (None: this one, alone).
        self.leadership: Leadership | None = None

    # -- life --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        try:
            loaded = self._load()
            while True:
                await self._serve(loaded)
                if self._stop.is_set() or not self._reload.is_set():
                    return 0
                self._reload.clear()
                self.notifier.reloading()
                try:
                    loaded = self._load()
                except ConfigError as exc:
                    # Keep running on the configuration that worked; say why.
                    self._say(Level.ERROR, f"reload refused, keeping the running config: {exc}")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def _serve(self, loaded: LoadedConfig) -> None:
        self.ready.clear()
        async with Engine.open(loaded, self._sinks) as engine:
            self.engine = engine
            engine.on_checks_due = self.wake_checks
            self.leadership = self._leadership(engine)
            engine.gate = self.leadership
            self._control = DaemonControl(self, engine)
            await self._control.refresh()
            server = await self._open_socket(engine, self._control)
            # Prometheus metrics when [metrics] listen is set; they live as long as the engine.
            metrics = await open_metrics(engine, self._control.live_status)
            try:
                self._spawn(self._pass_loop(engine), self._check_loop(engine))
                self._spawn(*(self._supervise(engine, s) for s in engine.sources))
                self._spawn(self._watchdog_loop(), self._prune_loop(engine))
                if self.leadership is not None:
                    self._spawn(self.leadership.run(self._stop))
                await self._announce_ready(engine)
                await _first(self._stop.wait(), self._reload.wait())
                self.notifier.stopping() if self._stop.is_set() else None
                self._say(Level.INFO, "stopping" if self._stop.is_set() else "reloading")
                await self._wind_down()
            finally:
                self.engine = None
                self.leadership = None
                await self._cancel_all()
                if metrics is not None:
                    await metrics.aclose()
                if server is not None:
                    await server.aclose()

    async def _open_socket(self, engine: Engine, control: DaemonControl) -> ControlServer | None:
        """The control socket; without it the daemon still syncs, and says why loudly."""
        settings = engine.settings
        secrets = [settings.closte.api_key]
        if settings.database.connection is not None:
            secrets.append(settings.database.connection.password)
        server = ControlServer(
            settings.socket,
            engine.store,
            control,
            engine.hub,
            daemon_uid=os.getuid(),
            secrets=secrets,
        )
        try:
            await server.start()
        except (ControlServerError, OSError) as exc:
            self._say(Level.ERROR, f"no control socket, the TUI cannot connect: {exc}")
            return None
        self._say(Level.INFO, f"control socket at {settings.socket.path}")
        return server

    def _leadership(self, engine: Engine) -> Leadership | None:
        settings = engine.settings
        if not settings.cluster.enabled:
            return None

        def on_change(role: Role) -> None:
            # A new leader passes at once (its ledger has just taken the shared rows).
            if role is Role.LEADER:
                self._trigger.set()
                self._checks_wake.set()

        return Leadership(
            settings.cluster, settings.database, engine.store, engine.events, on_change=on_change
        )

    def _spawn(self, *coroutines: Coroutine[Any, Any, None]) -> None:
        self._tasks.extend(asyncio.create_task(c) for c in coroutines)

    async def _announce_ready(self, engine: Engine) -> None:
        deadline = time.monotonic() + self.timing.first_read_s
        while len(engine.snapshots) < len(engine.sources) and time.monotonic() < deadline:
            self._trigger.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await _first(self._trigger.wait(), self._stop.wait())
            if self._stop.is_set():
                return
        self._trigger.set()
        self.ready.set()
        status = f"watching {', '.join(s.name for s in engine.sources) or 'no sources'}"
        self.notifier.ready(status)
        self._say(Level.INFO, f"ready: {status}, pid {os.getpid()}")

    async def _wind_down(self) -> None:
        """Let a pass in flight finish its calls within the grace time; then stop all."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timing.grace_s):
                async with self._pass_lock:
                    pass

    async def _cancel_all(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the loops -----------------------------------------------------------------------

    async def _pass_loop(self, engine: Engine) -> None:
        await _first(self.ready.wait(), self._stop.wait())
        next_full = time.monotonic() + engine.settings.closte.resync_s
        while not self._stop.is_set():
            timeout = max(0.0, next_full - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._trigger.wait()
            if self._stop.is_set() or self._reload.is_set():
                return
            # Debounce: the rest of a burst of edits joins this pass.
            await asyncio.sleep(self.timing.debounce_s)
            self._trigger.clear()
            report = await self.run_pass(engine)
            next_full = time.monotonic() + self._next_pass_in(engine, report)

    def _next_pass_in(self, engine: Engine, report: PassReport | None) -> float:
        """The resync period, or sooner when a domain's backoff ends before it."""
        wait = engine.settings.closte.resync_s
        if report is not None and report.deferred:
            now = time.time()
            ends = [
                e.retry_at - now
                for n in report.deferred
                if (e := report.entries.get(n)) is not None and e.retry_at is not None
            ]
            if ends:
                wait = min(wait, max(1.0, min(ends)))
        if report is not None and report.error is not None:
            wait = min(wait, 30.0)  # Closte's list failed: look again soon
        return wait

    async def run_pass(self, engine: Engine) -> PassReport | None:
        if self.leadership is not None and not self.leadership.is_leader:
            return None  # a standby does not act; the leader's passes are the fleet's
        async with self._pass_lock:
            live = self.live
            live.pass_running = True
            release = live.released_plan
            try:
                report = await engine.run_pass(release=release)
            except Exception as exc:  # the pass must not take the daemon down
                live.last_pass_error = f"the pass failed: {exc!r}"
                self._say(Level.ERROR, live.last_pass_error)
                return None
            finally:
                live.pass_running = False
            live.passes += 1
            live.last_pass_at = time.time()
            live.last_report = report
            live.last_pass_error = report.error
            if report.error is None:
                live.last_good_pass_at = live.last_pass_at
                live.held_plan = report.plan.held if report.plan is not None else None
                if release is not None and (live.held_plan is None or live.held_plan.id != release):
                    live.released_plan = None  # used (or no longer matches): one release only
            line = _status_line(report)
            self.notifier.status(line)
            self._say(Level.INFO if report.error is None else Level.WARNING, f"pass: {line}")
            if self._control is not None:
                await self._control.refresh()
            self._checks_wake.set()
            return report

    async def _check_loop(self, engine: Engine) -> None:
        interval: int | None = None
        while not self._stop.is_set():
            self._checks_wake.clear()
            try:
                effective = await engine.interval()
                if interval is not None and effective.value != interval:
                    moved = await engine.store.stages.reschedule(effective.value)
                    self._say(
                        Level.INFO,
                        f"check interval now {effective.value} s ({effective.origin});"
                        f" {moved} waiting check(s) moved up",
                    )
                interval = effective.value
                if self.leadership is None or await self.leadership.confirm():
                    await engine.run_checks()
                if self._control is not None:
                    await self._control.refresh()
            except Exception as exc:
                self._say(Level.ERROR, f"a round of stage checks failed: {exc!r}")
            next_at = await engine.store.stages.next_due_at()
            wait = 60.0 if next_at is None else min(60.0, max(0.05, next_at - time.time()))
            if self.leadership is not None and not self.leadership.is_leader:
                wait = 60.0  # a standby checks nothing; taking the lead wakes this loop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._checks_wake.wait()

    async def _supervise(self, engine: Engine, source: Source) -> None:
        async def on_snapshot(snapshot: SourceSnapshot) -> None:
            await engine.take(snapshot)
            self._trigger.set()

        async def on_failure(snapshot: SourceSnapshot, reason: str) -> None:
            engine.snapshots[source.name] = snapshot
            self._say(Level.ERROR, reason, source=source.name)
            self._trigger.set()

        supervisor = SourceSupervisor(
            source,
            on_snapshot,
            on_failure,
            last=lambda: engine.snapshots.get(source.name),
            base_s=self.timing.restart_base_s,
            max_s=self.timing.restart_max_s,
        )
        await supervisor.run(self._stop)

    async def _watchdog_loop(self) -> None:
        interval = self.notifier.watchdog_interval_s
        if interval is None:
            return
        while not self._stop.is_set():
            self.notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._stop.wait()

    async def _prune_loop(self, engine: Engine) -> None:
        schedule = PruneSchedule(engine.settings.store.max_events, self.timing.prune_every_s)
        while not self._stop.is_set():
            written = engine.store.events.stats.written
            if schedule.due(time.monotonic(), written):
                try:
                    await engine.store.prune()
                except Exception as exc:
                    self._say(Level.WARNING, f"pruning old events failed: {exc!r}")
                schedule.pruned(time.monotonic(), written)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(LOOK_EVERY_S, self.timing.prune_every_s)):
                    await self._stop.wait()

    # -- what operators ask for ------------------------------------------------------------

    def resync(self) -> str:
        self._trigger.set()
        return "a full pass starts now"

    def release(self, plan_id: str) -> str:
        held = self.live.held_plan
        if held is None:
            raise ValueError("no removal is held back now")
        if plan_id != held.id:
            raise ValueError(f"plan {plan_id} is not the held plan (that is {held.id})")
        self.live.released_plan = plan_id
        self._trigger.set()
        return f"released plan {plan_id}: removing {len(held.domains)} domain(s)"

    def wake_checks(self) -> None:
        self._checks_wake.set()

    def _say(self, level: Level, message: str, **details: Any) -> None:
        engine = self.engine
        event = make_event(level, KIND, message, **details)
        if engine is not None:
            engine.events.emit(event)
        else:
            for sink in self._sinks:
                sink.emit(event)


def _status_line(report: PassReport) -> str:
    if report.error is not None:
        return f"last pass failed: {report.error}"[:200]
    plan = report.plan
    if plan is None:
        return "no plan"
    added = sum(r.ok for r in report.results if r.operation == "add")
    removed = sum(r.ok for r in report.results if r.operation == "remove")
    held = len(report.held_before) + (0 if report.dry_run else added - removed)
    text = f"Closte holds {held}; last pass: +{added} -{removed}"
    if report.refused:
        text += f"; {len(report.refused)} refused by Closte"
    if report.deferred:
        text += f"; {len(report.deferred)} backing off"
    if plan.held is not None:
        text += f"; removals held (plan {plan.held.id})"
    if report.failures:
        text += f"; {len(report.failures)} call(s) failed"
    return text + ("; in sync" if report.in_sync else "; not in sync")


async def _first(*awaitables: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of these finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
