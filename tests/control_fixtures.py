"""Fixtures for the control socket, the CLI clients and the TUI.

A real store in a temporary folder with real rows, a real ControlServer on a real Unix
socket, and a small in-test ``DaemonActions`` that records what it was asked. Test modules
import the fixtures they use by name.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from closte_sync.daemon.control.hub import ControlHub
from closte_sync.daemon.control.server import ControlServer, ServerLimits
from closte_sync.daemon.events import Level, make_event
from closte_sync.daemon.settings import SocketSettings, StoreSettings
from closte_sync.daemon.store import CheckKind, DomainOrigin, Stage, Store, open_store
from closte_sync.daemon.store.stages import StageUpdate
from closte_sync.shared.protocol import check_setting
from closte_sync.shared.secret import Secret

# Long and distinctive, so a leak anywhere is found by a plain substring search.
API_KEY = "ck_live_9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
DB_PASSWORD = "db-pass-Zq81uXy7Lm03"
NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC: rows get fixed times, snapshots stay stable
PLAN_ID = "plan-7f3a"


@dataclass
class FakeActions:
    """The daemon's side of the seam, in memory: records every call."""

    status: dict[str, Any] = field(
        default_factory=lambda: {
            "version": "0.1.0",
            "pid": 4242,
            "pass_running": False,
            "last_pass_at": NOW - 30,
            "last_good_pass_at": NOW - 30,
            "held_plan": None,
            "sources": {
                "database": {"healthy": True, "problems": []},
                "domains_file": {"healthy": False, "problems": ["domains.txt:3: bad name"]},
            },
            "interval": {"value": 300, "origin": "default"},
            "tries": {"dns_tries": 5, "ssl_tries": 20},
            # A careless daemon might put these here: the server must mask them.
            "api_key": Secret(API_KEY),
            "database": f"mysql://wp:{DB_PASSWORD}@127.0.0.1/wp",
        }
    )
    calls: list[tuple[str, Any]] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)

    def live_status(self) -> Mapping[str, Any]:
        return self.status

    def _record(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        self.called.set()

    async def retry(self, domain: str) -> str:
        self._record("retry", domain)
        return f"{domain}: checking again now"

    async def resync(self) -> str:
        self._record("resync", None)
        return "a reconcile pass has started"

    async def release(self, plan_id: str) -> str:
        self._record("release", plan_id)
        held = self.status.get("held_plan")
        if not held or held["id"] != plan_id:
            raise ValueError(f"no held plan {plan_id!r}")
        self.status["held_plan"] = None
        return f"released plan {plan_id}: {len(held['domains'])} removals go ahead"

    async def set_value(self, key: str, value: int, by: str) -> str:
        self._record("set", (key, value, by))
        name, number = check_setting(key, value)
        if name == "interval_s":
            self.status["interval"] = {"value": number, "origin": "operator"}
        else:
            self.status["tries"][name] = number
        return f"{name} is now {number}"

    async def test_closte(self) -> Mapping[str, Any]:
        self._record("test_closte", None)
        return {
            "ok": True,
            "kind": "ok",
            "message": f"Closte accepted the key {Secret(API_KEY).masked}",
            "hint": None,
        }


async def seed(store: Store) -> None:
    """A small network: one live, one waiting for DNS, one failing its add, one failed."""
    ledger, stages = store.ledger, store.stages
    await ledger.want(
        "shop.example.com", DomainOrigin.DATABASE, place="wp_wu_domain_mappings#1", now=NOW - 3600
    )
    await ledger.mark_adding("shop.example.com", now=NOW - 3590)
    await ledger.confirm_added("shop.example.com", now=NOW - 3580)
    await stages.record_check(
        "shop.example.com",
        CheckKind.TLS,
        ok=True,
        summary="valid certificate for shop.example.com",
        details={
            "not_after": NOW + 80 * 86400,
            "issuer": "Sandbox CA",
            "sans": ["shop.example.com"],
        },
        update=StageUpdate(Stage.DONE, 0, None),
        now=NOW - 600,
    )

    await ledger.want("blog.example.org", DomainOrigin.FILE, place="domains.txt:2", now=NOW - 1200)
    await ledger.mark_adding("blog.example.org", now=NOW - 1190)
    await ledger.confirm_added("blog.example.org", now=NOW - 1180)
    await stages.record_check(
        "blog.example.org",
        CheckKind.DNS,
        ok=False,
        summary="A 203.0.113.9; expected 127.0.0.10",
        details={
            "answers": ["203.0.113.9"],
            "expected": ["127.0.0.10"],
            "hint": "dns-not-pointing",
        },
        update=StageUpdate(Stage.CHECKING_DNS, 3, NOW + 240),
        now=NOW - 60,
    )

    await ledger.want("new.example.net", DomainOrigin.SITE, place="blog 7", now=NOW - 300)
    await ledger.mark_adding("new.example.net", now=NOW - 290)
    await ledger.record_failure(
        "new.example.net", f"HTTP 502 from Closte (key {API_KEY})", now=NOW - 280
    )

    await ledger.want(
        "broken.example.com", DomainOrigin.DATABASE, place="wp_wu_domain_mappings#4", now=NOW - 9000
    )
    await ledger.mark_adding("broken.example.com", now=NOW - 8990)
    await ledger.confirm_added("broken.example.com", now=NOW - 8980)
    await stages.record_check(
        "broken.example.com",
        CheckKind.DNS,
        ok=False,
        summary="no A record",
        details={"answers": [], "expected": ["127.0.0.10"]},
        update=StageUpdate(Stage.FAILED, 6, None),
        now=NOW - 100,
    )

    for i, (level, kind, message, domain) in enumerate(
        [
            (Level.INFO, "reconcile", "pass started", None),
            (
                Level.INFO,
                "domain-shop.example.com",
                "Starting Check for shop.example.com",
                "shop.example.com",
            ),
            (
                Level.WARNING,
                "domain-blog.example.org",
                "- DNS propagation not finished, retrying in 5 minutes...",
                "blog.example.org",
            ),
            (Level.ERROR, "integration-closte", "add failed: HTTP 502", "new.example.net"),
            (Level.INFO, "reconcile", "pass finished", None),
        ]
    ):
        event = make_event(level, kind, message, domain=domain, step=i)
        store.events.emit(
            type(event)(
                event.level, event.kind, event.message, event.domain, event.details, NOW - 50 + i
            )
        )
    await store.events.flush()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A folder other users may enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="closte-ctl-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Running:
    server: ControlServer
    store: Store
    hub: ControlHub
    actions: FakeActions
    path: Path


@asynccontextmanager
async def running_server(
    folder: Path,
    *,
    store_path: Path | None = None,
    group: str | None = None,
    admin_group: str | None = None,
    limits: ServerLimits | None = None,
    actions: FakeActions | None = None,
    seeded: bool = True,
) -> AsyncIterator[Running]:
    store = await open_store(StoreSettings(path=store_path or folder / "state.sqlite3"))
    store.register_secret(Secret(API_KEY))
    try:
        if seeded and store_path is None:
            await seed(store)
        hub = ControlHub(store.events)
        path = folder / "control.sock"
        fake = actions or FakeActions()
        server = ControlServer(
            SocketSettings(path=path, group=group, admin_group=admin_group),
            store,
            fake,
            hub,
            secrets=[Secret(API_KEY), Secret(DB_PASSWORD)],
            limits=limits,
        )
        await server.start()
        try:
            yield Running(server, store, hub, fake, path)
        finally:
            await server.aclose()
    finally:
        await store.aclose()


@pytest.fixture
async def running(socket_dir: Path) -> AsyncIterator[Running]:
    async with running_server(socket_dir) as up:
        yield up
