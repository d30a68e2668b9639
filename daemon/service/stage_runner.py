"""Stage checks: move each domain Closte holds through the plugin's stages.

The plugin's rules (``Domain_Manager::async_process_domain_stage``), kept exactly:
``tries`` goes up before each check and the domain fails once ``tries > max`` (5 for DNS,
20 for SSL on Closte); DNS passing moves the domain to ``checking-ssl-cert`` and checks again
at once with tries reset; a valid certificate makes it ``done`` and ``secure``. Ours adds
reasons: every check is an event of kind ``domain-<name>`` (the plugin's log handle) with
what was asked, what came back, what was expected and what to do. A check that could not be
made at all (our resolver down) does not count as a try. ``done`` domains are looked at
again daily, and a certificate near its expiry, or broken, is a warning.

The SSL check that follows a passing DNS check comes in the same round, after the DNS checks
of every domain that was due (as the plugin enqueues it as a job of its own): a round's DNS
answers, and the hints of the domains that fail there, are out in seconds, not behind
thousands of TLS handshakes. The DNS result is written first (``checking-ssl-cert``, due
now), so a round cut short leaves the SSL check due for the next one.

Results are written in one transaction per batch of checks, while the next batch is checked,
so ten thousand checks cost a few commits and little waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from closte_sync.daemon.checks import CheckResult, DnsChecker, TlsChecker, expiry_warning
from closte_sync.daemon.events import Event, EventSink, Level, make_event, room_in
from closte_sync.daemon.store import CheckWrite, Stage, StageEntry, StageUpdate, Store
from closte_sync.shared.domains import display

EVENT_SLICE = 500  # a batch's events go out this many at a time
RECHECK_DONE_S = 86_400.0  # done domains: their certificate is looked at daily
EXPIRY_WARNING_DAYS = 14

WriteBack = Callable[[str, Stage, bool], Awaitable[None]]


@dataclass(frozen=True)
class StageLimits:
    interval_s: float
    dns_tries: int
    ssl_tries: int


@dataclass
class RoundReport:
    checked: int = 0  # domains checked (a DNS check and the SSL check after it count once)
    domains: list[str] = field(default_factory=list)  # every domain checked
    moved: dict[str, Stage] = field(default_factory=dict)  # domains whose stage changed
    failed: list[str] = field(default_factory=list)  # reached failed / ssl-failed now
    followed: int = 0  # SSL checks that followed a passing DNS check in this round
    due_s: float = 0.0  # time spent checking what was due, results written
    follow_s: float = 0.0  # time spent on the SSL checks that followed, results written


@dataclass
class _Outcome:
    writes: list[CheckWrite] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stage: Stage | None = None  # the new stage, when it changed
    # DNS passed: the addresses it gave, for the SSL check that follows in this round.
    follow: tuple[str, ...] | None = None


_Check = Callable[[StageEntry], Awaitable[_Outcome]]


class StageRunner:
    def __init__(
        self,
        store: Store,
        dns: DnsChecker,
        tls: TlsChecker,
        events: EventSink,
        *,
        write_back: WriteBack | None = None,
        concurrency: int = 64,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._dns = dns
        self._tls = tls
        self._events = events
        self._write_back = write_back
        self._concurrency = concurrency
        self._now = now

    async def run_due(
        self, limits: StageLimits, *, batch: int = 2000, read_ahead: int = 20_000
    ) -> RoundReport:
        """Check every domain whose time has come, record, write back; then the SSL check
        of each domain whose DNS check passed.

        The due rows are read ``read_ahead`` at a time and checked ``batch`` at a time; a
        batch's results are recorded (store, write-back, events) while the next batch is
        being checked, so the store's thread and the checks overlap."""
        report = RoundReport()

        async def check(entry: StageEntry) -> _Outcome:
            return await self._check(entry, limits)

        # The domains whose DNS check passed, with the addresses it gave: set anew for each
        # read of due rows below, and read by ``follow``.
        passed: dict[str, tuple[str, ...]] = {}

        async def follow(entry: StageEntry) -> _Outcome:
            addresses = passed[entry.domain]
            return await self._ssl_stage(entry, 0, limits, _Outcome(), addresses=addresses)

        while True:
            due = await self._store.stages.due(self._now(), limit=read_ahead)
            if not due:
                return report
            started = time.perf_counter()
            passed = await self._check_in_batches(due, check, limits, batch, report)
            report.checked += len(due)
            report.domains += [e.domain for e in due]
            followed = time.perf_counter()
            report.due_s += followed - started
            if passed:
                ssl_due = [
                    replace(e, stage=Stage.CHECKING_SSL_CERT, tries=0)
                    for e in due
                    if e.domain in passed
                ]
                await self._check_in_batches(ssl_due, follow, limits, batch, report)
                report.followed += len(ssl_due)
                report.follow_s += time.perf_counter() - followed
            if len(due) < read_ahead:
                return report

    async def _check_in_batches(
        self,
        due: list[StageEntry],
        check: _Check,
        limits: StageLimits,
        batch: int,
        report: RoundReport,
    ) -> dict[str, tuple[str, ...]]:
        """Check ``due`` ``batch`` at a time, each batch recorded while the next is checked.

        Returns the domains whose DNS check passed and the addresses it gave; the outcomes
        themselves are let go once recorded (10,000 of them weigh tens of megabytes)."""
        passed: dict[str, tuple[str, ...]] = {}
        recording: asyncio.Task[None] | None = None
        try:
            for start in range(0, len(due), batch):
                part = due[start : start + batch]
                outcomes = await self._check_part(part, check, limits)
                passed.update(
                    (e.domain, o.follow)
                    for e, o in zip(part, outcomes, strict=True)
                    if o.follow is not None
                )
                if recording is not None:
                    await recording
                recording = asyncio.create_task(self._record(part, outcomes, report))
            if recording is not None:
                await recording
        finally:
            if recording is not None and not recording.done():
                recording.cancel()  # stopping: that batch is checked again next round
                await asyncio.wait([recording])
        return passed

    async def _check_part(
        self, part: list[StageEntry], check: _Check, limits: StageLimits
    ) -> list[_Outcome]:
        """At most ``concurrency`` checks in flight: as many workers, each taking the next
        entry when its check is done (no task or semaphore turn per domain)."""
        by_index: dict[int, _Outcome] = {}
        entries = iter(enumerate(part))

        async def worker() -> None:
            for index, entry in entries:
                by_index[index] = await self._guarded(entry, check, limits)

        async with asyncio.TaskGroup() as workers:
            for _ in range(min(self._concurrency, len(part))):
                workers.create_task(worker())
        return [by_index[index] for index in range(len(part))]

    async def _record(
        self, due: list[StageEntry], outcomes: list[_Outcome], report: RoundReport
    ) -> None:
        await self._store.stages.record_many([w for o in outcomes for w in o.writes])
        moved = {e.domain: o.stage for e, o in zip(due, outcomes, strict=True) if o.stage}
        # Written back before the events go out: an event says the whole step is done.
        await self._write_stages(moved)
        events = [event for outcome in outcomes for event in outcome.events]
        # A batch's events come all at once: let the store's writer and the socket's
        # subscribers make room for them, a slice at a time, rather than drop the oldest
        # events or a subscriber that is only slower than the burst (each gives up
        # waiting after a few seconds).
        for start in range(0, len(events), EVENT_SLICE):
            part = events[start : start + EVENT_SLICE]
            await room_in(self._events, len(part))
            for event in part:
                self._events.emit(event)
        report.moved.update(moved)
        report.failed += [n for n, s in moved.items() if s in (Stage.FAILED, Stage.SSL_FAILED)]

    async def _write_stages(self, moved: dict[str, Stage]) -> None:
        if self._write_back is None:
            return
        for name, stage in moved.items():
            try:
                await self._write_back(name, stage, stage is Stage.DONE)
            except Exception as exc:  # the database's trouble must not stop the checks
                self._events.emit(
                    make_event(
                        Level.ERROR,
                        "database",
                        f"could not write the stage of {display(name)} back: {exc}",
                        domain=name,
                    )
                )

    async def _guarded(self, entry: StageEntry, check: _Check, limits: StageLimits) -> _Outcome:
        try:
            return await check(entry)
        except Exception as exc:  # a bug in one check must not stop the others
            outcome = _Outcome()
            outcome.events.append(
                make_event(
                    Level.ERROR,
                    _kind(entry.domain),
                    f"the check of {display(entry.domain)} broke: {exc!r}",
                    domain=entry.domain,
                )
            )
            outcome.writes.append(
                CheckWrite(
                    entry.domain,
                    "dns",
                    False,
                    f"the check broke: {exc!r}",
                    {},
                    StageUpdate(entry.stage, entry.tries, self._now() + limits.interval_s),
                )
            )
            return outcome

    async def _check(self, entry: StageEntry, limits: StageLimits) -> _Outcome:
        if entry.stage is Stage.CHECKING_DNS:
            return await self._dns_stage(entry, limits)
        if entry.stage is Stage.CHECKING_SSL_CERT:
            return await self._ssl_stage(entry, entry.tries, limits, _Outcome())
        if entry.stage in (Stage.DONE, Stage.DONE_WITHOUT_SSL):
            return await self._recheck_done(entry)
        # failed / ssl-failed: nothing planned until a retry; a stray due time is cleared.
        outcome = _Outcome()
        outcome.writes.append(
            CheckWrite(
                entry.domain,
                "dns",
                False,
                entry.last_summary,
                {},
                StageUpdate(entry.stage, entry.tries, None),
            )
        )
        return outcome

    async def _dns_stage(self, entry: StageEntry, limits: StageLimits) -> _Outcome:
        name = entry.domain
        outcome = _Outcome()
        tries = entry.tries + 1
        outcome.events.append(self._event(Level.INFO, name, f"Starting Check for {name}"))
        if tries > limits.dns_tries:
            return self._give_up(entry, tries, Stage.FAILED, "DNS", limits.dns_tries, outcome)
        result = await self._dns.check(name)
        if result.ok:
            outcome.writes.append(
                self._write(result, StageUpdate(Stage.CHECKING_SSL_CERT, 0, self._now()))
            )
            outcome.events.append(
                self._result_event(
                    result, "- DNS propagation finished, advancing domain to next step..."
                )
            )
            outcome.stage = Stage.CHECKING_SSL_CERT
            # As the plugin: the SSL check follows, with fresh tries, in this round.
            outcome.follow = result.addresses
            return outcome
        counted = entry.tries if result.inconclusive else tries
        update = StageUpdate(Stage.CHECKING_DNS, counted, self._now() + limits.interval_s)
        outcome.writes.append(self._write(result, update))
        line = (
            "- DNS check could not be made (not counted as a try), retrying..."
            if result.inconclusive
            else f"- DNS propagation not finished, retrying in {_wait(limits.interval_s)}..."
        )
        outcome.events.append(self._result_event(result, line, tries=counted))
        return outcome

    async def _ssl_stage(
        self,
        entry: StageEntry,
        tries_before: int,
        limits: StageLimits,
        outcome: _Outcome,
        *,
        addresses: tuple[str, ...] | None = None,
    ) -> _Outcome:
        name = entry.domain
        tries = tries_before + 1
        if tries > limits.ssl_tries:
            return self._give_up(entry, tries, Stage.SSL_FAILED, "SSL", limits.ssl_tries, outcome)
        if addresses is None:
            addresses = (await self._dns.check(name)).addresses
        result = await self._tls.check(name, addresses)
        if result.ok:
            update = StageUpdate(Stage.DONE, 0, self._now() + RECHECK_DONE_S)
            outcome.writes.append(self._write(result, update))
            outcome.events.append(
                self._result_event(result, "- Valid SSL cert found. Marking domain as done.")
            )
            outcome.stage = Stage.DONE
            return outcome
        counted = tries_before if result.inconclusive else tries
        update = StageUpdate(Stage.CHECKING_SSL_CERT, counted, self._now() + limits.interval_s)
        outcome.writes.append(self._write(result, update))
        outcome.events.append(
            self._result_event(
                result,
                f"- SSL Cert not found, retrying in {_wait(limits.interval_s)}...",
                tries=counted,
            )
        )
        return outcome

    async def _recheck_done(self, entry: StageEntry) -> _Outcome:
        name = entry.domain
        outcome = _Outcome()
        dns = await self._dns.check(name)
        result = await self._tls.check(name, dns.addresses)
        update = StageUpdate(entry.stage, 0, self._now() + RECHECK_DONE_S)
        outcome.writes.append(self._write(result, update))
        warning = (
            expiry_warning(result, self._now(), EXPIRY_WARNING_DAYS)
            if result.ok
            else f"the certificate of {display(name)} is no longer valid: {result.summary}"
        )
        if warning is not None:
            event = self._result_event(result, warning, level=Level.WARNING)
            outcome.events.append(event)
        return outcome

    def _give_up(
        self,
        entry: StageEntry,
        tries: int,
        stage: Stage,
        what: str,
        limit: int,
        outcome: _Outcome,
    ) -> _Outcome:
        name = entry.domain
        text = (
            f"- {what} check failed {limit} times; giving up ({stage}). Last result:"
            f" {entry.last_summary or 'none'}. Fix it, then `closte-sync retry {display(name)}`"
        )
        outcome.writes.append(
            CheckWrite(
                name,
                "dns" if stage is Stage.FAILED else "tls",
                False,
                text,
                {"tries": tries, "limit": limit},
                StageUpdate(stage, tries, None),
            )
        )
        outcome.events.append(self._event(Level.ERROR, name, text, stage=stage.value))
        outcome.stage = stage
        return outcome

    def _write(self, result: CheckResult, update: StageUpdate) -> CheckWrite:
        # Flat, with the names the control socket reads: what was asked and answered,
        # what was expected, the hint, and the certificate's facts.
        details: dict[str, object] = {
            **result.details,
            **_plain_dns_facts(result.details),
            "hint": result.hint_id,
            "advice": result.advice,
            "inconclusive": result.inconclusive,
            "addresses": list(result.addresses),
        }
        if result.kind == "tls":
            details |= {
                "not_after": result.not_after,
                "issuer": result.issuer,
                "sans": list(result.names),
            }
        return CheckWrite(result.domain, result.kind, result.ok, result.summary, details, update)

    def _result_event(
        self, result: CheckResult, line: str, *, level: Level | None = None, tries: int = 0
    ) -> Event:
        chosen = level or (Level.INFO if result.ok else Level.WARNING)
        text = f"{line} {result.kind.upper()}: {result.summary}"
        if result.advice and not result.ok:
            text += f" What to do: {result.advice}"
        return self._event(
            chosen,
            result.domain,
            text,
            check=result.kind,
            ok=result.ok,
            hint=result.hint_id,
            tries=tries,
        )

    def _event(self, level: Level, name: str, message: str, **details: object) -> Event:
        return make_event(level, _kind(name), message, domain=name, **details)


def _plain_dns_facts(details: Mapping[str, Any]) -> dict[str, object]:
    """The DNS check's answers and target as plain lists (what came back, what was
    expected), beside the full records kept under ``records`` and ``target``."""
    answers, target = details.get("answers"), details.get("expected")
    plain: dict[str, object] = {}
    if isinstance(answers, Mapping):
        plain["records"] = dict(answers)
        plain["answers"] = [a for values in answers.values() for a in values]
    if isinstance(target, Mapping):
        plain["target"] = dict(target)
        plain["expected"] = [*target.get("ips", ()), *target.get("hosts", ())]
    return plain


def _wait(seconds: float) -> str:
    """The plugin says "retrying in 5 minutes"; below a minute we say seconds."""
    if seconds < 60:
        return f"{seconds:.0f} seconds"
    minutes = round(seconds / 60)
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def _kind(name: str) -> str:
    return f"domain-{name}"
