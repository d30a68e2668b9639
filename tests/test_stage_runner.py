"""The stage runner keeps the plugin's rules, against the sandbox's real DNS and TLS edge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checks_fixtures import discover, dns_checker, sandbox_settings
from control_fixtures import running_server, socket_dir

from closte_sync.daemon.checks import CheckResult, DnsChecker, TlsChecker
from closte_sync.daemon.control.client import ControlClient
from closte_sync.daemon.events import MemorySink
from closte_sync.daemon.service.stage_runner import RoundReport, StageLimits, StageRunner
from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store import Stage, Store, open_store
from closte_sync.sandbox.runner import Sandbox
from closte_sync.shared.protocol import Op, Push, PushMessage

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]
__all__ = ["socket_dir"]

LIMITS = StageLimits(interval_s=10, dns_tries=2, ssl_tries=2)


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=tmp_path / "state.sqlite3"))
    yield opened
    await opened.aclose()


async def _runner(
    sb: Sandbox, store: Store, sink: MemorySink, clock: Clock, *, dns: DnsChecker | None = None
) -> tuple[StageRunner, list[tuple[str, Stage, bool]]]:
    written: list[tuple[str, Stage, bool]] = []

    async def write_back(name: str, stage: Stage, secure: bool) -> None:
        written.append((name, stage, secure))

    checker = dns or await dns_checker(sb)
    tls = TlsChecker(sandbox_settings(sb), now=sb.clock)
    runner = StageRunner(store, checker, tls, sink, write_back=write_back, now=clock)
    return runner, written


async def _track(store: Store, name: str, clock: Clock, stage: Stage = Stage.CHECKING_DNS) -> None:
    await store.ledger.want(name, "database")
    await store.stages.track({name: stage}, now=clock())


async def test_dns_then_ssl_at_once_then_done_and_written_back(
    closte_sandbox: Sandbox, store: Store
) -> None:
    clock, sink = Clock(closte_sandbox.clock()), MemorySink()
    runner, written = await _runner(closte_sandbox, store, sink, clock)
    closte_sandbox.state.add_alias(closte_sandbox.api_key, "live.example.test", wildcard=False)
    closte_sandbox.dns.set_a("live.example.test", [closte_sandbox.network_ip])
    await _track(store, "live.example.test", clock)
    report = await runner.run_due(LIMITS)
    assert report.moved == {"live.example.test": Stage.DONE}
    entry = await store.stages.get("live.example.test")
    assert entry is not None and (entry.stage, entry.tries) == (Stage.DONE, 0)
    # As the plugin saves it: checking-ssl-cert once DNS passed, then done.
    assert written == [
        ("live.example.test", Stage.CHECKING_SSL_CERT, False),
        ("live.example.test", Stage.DONE, True),
    ]
    assert (report.checked, report.followed) == (1, 1)
    messages = [e.message for e in sink.events if e.kind == "domain-live.example.test"]
    assert messages[0] == "Starting Check for live.example.test"
    assert "DNS propagation finished" in messages[1] and "Valid SSL cert found" in messages[2]


async def test_dns_fails_after_more_tries_than_the_limit(
    closte_sandbox: Sandbox, store: Store
) -> None:
    clock, sink = Clock(closte_sandbox.clock()), MemorySink()
    runner, written = await _runner(closte_sandbox, store, sink, clock)
    closte_sandbox.dns.set_a("away.example.test", ["127.0.0.9"])
    await _track(store, "away.example.test", clock)
    tries = []
    for _ in range(3):
        await runner.run_due(LIMITS)
        entry = await store.stages.get("away.example.test")
        assert entry is not None
        tries.append((entry.stage, entry.tries))
        clock.now += LIMITS.interval_s
    # The plugin: tries goes up before the check; failed once tries > max.
    assert tries == [
        (Stage.CHECKING_DNS, 1),
        (Stage.CHECKING_DNS, 2),
        (Stage.FAILED, 3),
    ]
    assert written == [("away.example.test", Stage.FAILED, False)]
    failing = [
        e for e in sink.events if e.kind == "domain-away.example.test" and "127.0.0.9" in e.message
    ]
    assert failing and "What to do" in failing[0].message
    assert (await store.stages.get("away.example.test")).next_check_at is None  # type: ignore[union-attr]
    assert (await runner.run_due(LIMITS)).checked == 0  # nothing planned for a failed domain


async def test_a_check_that_could_not_be_made_is_not_a_try(
    closte_sandbox: Sandbox, store: Store
) -> None:
    clock, sink = Clock(closte_sandbox.clock()), MemorySink()
    settings = sandbox_settings(
        closte_sandbox, nameservers=("127.0.0.1:9",)
    )  # nothing answers there
    unreachable = DnsChecker(
        settings, await discover(sandbox_settings(closte_sandbox)), deadline_s=0.5
    )
    runner, _ = await _runner(closte_sandbox, store, sink, clock, dns=unreachable)
    await _track(store, "quiet.example.test", clock)
    await runner.run_due(LIMITS)
    entry = await store.stages.get("quiet.example.test")
    assert entry is not None and (entry.stage, entry.tries) == (Stage.CHECKING_DNS, 0)
    assert entry.next_check_at == clock.now + LIMITS.interval_s


async def test_ssl_waits_for_the_certificate_then_finishes(
    closte_sandbox: Sandbox, store: Store
) -> None:
    clock, sink = Clock(closte_sandbox.clock()), MemorySink()
    runner, written = await _runner(closte_sandbox, store, sink, clock)
    closte_sandbox.tls.cert_delay_s = 300
    closte_sandbox.state.add_alias(closte_sandbox.api_key, "slow.example.test", wildcard=False)
    closte_sandbox.dns.set_a("slow.example.test", [closte_sandbox.network_ip])
    await _track(store, "slow.example.test", clock)
    report = await runner.run_due(LIMITS)
    assert report.moved == {"slow.example.test": Stage.CHECKING_SSL_CERT}
    entry = await store.stages.get("slow.example.test")
    assert entry is not None and (entry.stage, entry.tries) == (Stage.CHECKING_SSL_CERT, 1)
    waiting = [e for e in sink.events if "SSL Cert not found" in e.message]
    assert waiting and "5-10 minutes" in waiting[0].message
    closte_sandbox.clock.advance(301)
    clock.now += LIMITS.interval_s
    report = await runner.run_due(LIMITS)
    assert report.moved == {"slow.example.test": Stage.DONE}
    assert written[-1] == ("slow.example.test", Stage.DONE, True)


async def test_a_done_domain_near_expiry_is_a_warning(
    closte_sandbox: Sandbox, store: Store
) -> None:
    clock, sink = Clock(closte_sandbox.clock()), MemorySink()
    runner, written = await _runner(closte_sandbox, store, sink, clock)
    closte_sandbox.state.add_alias(closte_sandbox.api_key, "old.example.test", wildcard=False)
    closte_sandbox.dns.set_a("old.example.test", [closte_sandbox.network_ip])
    closte_sandbox.tls.set_mode("old.example.test", "expiring")
    await _track(store, "old.example.test", clock, Stage.DONE)
    report = await runner.run_due(LIMITS)
    assert report.moved == {} and written == []
    entry = await store.stages.get("old.example.test")
    assert entry is not None and entry.stage is Stage.DONE
    assert entry.next_check_at is not None and entry.next_check_at >= clock.now + 86_000
    warning = await sink.wait_for(
        lambda e: e.domain == "old.example.test" and e.level == "warning", 1
    )
    assert "expir" in warning.message


class HeldTls(TlsChecker):
    """The real checker's settings, but every handshake waits until the test lets go."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def check(self, domain: str, addresses: Sequence[str]) -> CheckResult:
        self.entered.set()
        await self.release.wait()
        return await super().check(domain, addresses)


@dataclass
class HeldRound:
    """A round started over domains pointing at the network, held at its first SSL check."""

    runner: StageRunner
    task: asyncio.Task[RoundReport]
    tls: HeldTls
    sink: MemorySink
    clock: Clock


async def _round_held_at_ssl(
    sb: Sandbox, store: Store, names: Sequence[str], *, batch: int = 2000
) -> HeldRound:
    clock, sink = Clock(sb.clock()), MemorySink()
    tls = HeldTls(sandbox_settings(sb), now=sb.clock)
    runner = StageRunner(store, await dns_checker(sb), tls, sink, now=clock)
    for name in names:
        sb.state.add_alias(sb.api_key, name, wildcard=False)
        sb.dns.set_a(name, [sb.network_ip])
        await store.ledger.want(name, "database")
    await store.stages.track(dict.fromkeys(names, Stage.CHECKING_DNS), now=clock())
    task = asyncio.create_task(runner.run_due(LIMITS, batch=batch))
    async with asyncio.timeout(10):
        await tls.entered.wait()
    return HeldRound(runner, task, tls, sink, clock)


async def test_a_rounds_dns_checks_all_come_before_the_ssl_checks_that_follow(
    closte_sandbox: Sandbox, store: Store
) -> None:
    names = [f"wave{i}.example.test" for i in range(5)]
    held = await _round_held_at_ssl(closte_sandbox, store, names, batch=2)
    # The first SSL check has begun: every DNS result is out and written already.
    passed = [e.domain for e in held.sink.events if "DNS propagation finished" in e.message]
    assert sorted(passed) == names
    for name in names:
        entry = await store.stages.get(name)
        assert entry is not None and entry.stage is Stage.CHECKING_SSL_CERT
    held.tls.release.set()
    report = await asyncio.wait_for(held.task, 10)
    assert (report.checked, report.followed) == (5, 5)
    assert report.moved == dict.fromkeys(names, Stage.DONE)
    assert report.due_s > 0 and report.follow_s > 0


async def test_a_round_stopped_before_its_ssl_checks_leaves_them_due(
    closte_sandbox: Sandbox, store: Store
) -> None:
    held = await _round_held_at_ssl(closte_sandbox, store, ["cut.example.test"])
    held.task.cancel()  # the daemon stopping mid-round
    with pytest.raises(asyncio.CancelledError):
        await held.task
    entry = await store.stages.get("cut.example.test")
    assert entry is not None and (entry.stage, entry.tries) == (Stage.CHECKING_SSL_CERT, 0)
    assert entry.next_check_at is not None and entry.next_check_at <= held.clock.now
    # The next round takes the SSL check up where it stopped.
    held.tls.release.set()
    report = await held.runner.run_due(LIMITS)
    assert report.moved == {"cut.example.test": Stage.DONE} and report.followed == 0


async def test_a_round_of_many_domains_does_not_drop_a_subscriber_that_reads(
    closte_sandbox: Sandbox, socket_dir: Path
) -> None:
    """1,200 domains: their DNS results are 2,400 events in one batch, more than a
    subscriber may have waiting (2,000). Let out in slices, each after the hub made room,
    they all reach the subscriber, which stays connected."""
    names = [f"many{i}.example.test" for i in range(1200)]
    async with running_server(socket_dir, seeded=False) as up:
        for name in names:
            closte_sandbox.state.add_alias(closte_sandbox.api_key, name, wildcard=False)
            closte_sandbox.dns.set_a(name, [closte_sandbox.network_ip])
            await up.store.ledger.want(name, "database")
        clock = Clock(closte_sandbox.clock())
        await up.store.stages.track(dict.fromkeys(names, Stage.CHECKING_DNS), now=clock())
        tls = TlsChecker(sandbox_settings(closte_sandbox), now=closte_sandbox.clock)
        runner = StageRunner(up.store, await dns_checker(closte_sandbox), tls, up.hub, now=clock)
        done = [0]
        all_seen = asyncio.Event()

        def on_push(message: PushMessage) -> None:
            if message.push == Push.EVENT and "Valid SSL cert found" in message.data["message"]:
                done[0] += 1
                if done[0] == len(names):
                    all_seen.set()

        async with await ControlClient.connect(up.path, on_push=on_push) as client:
            await client.call(Op.SUBSCRIBE, topics=["events"])
            report = await runner.run_due(LIMITS)
            assert report.moved == dict.fromkeys(names, Stage.DONE)
            # Every event, or the drop notice, whichever comes first.
            ends = [
                asyncio.ensure_future(all_seen.wait()),
                asyncio.ensure_future(client.closed.wait()),
            ]
            await asyncio.wait(ends, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            for end in ends:
                end.cancel()
            assert not client.closed.is_set(), client.close_reason
            assert done[0] == len(names)
