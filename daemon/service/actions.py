"""What operators may ask of a running daemon through the control socket.

The control server builds its domain rows and event pages from the store; this adapter is
the daemon's side of the seam (``closte_sync.daemon.control.backend.DaemonActions``): its
live state and every change an operator can make.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from closte_sync.daemon.closte.results import ResultKind
from closte_sync.daemon.events import Level, make_event

if TYPE_CHECKING:
    from closte_sync.daemon.service.daemon import Daemon
    from closte_sync.daemon.service.engine import Engine


def _version() -> str:
    try:
        return metadata.version("closte-sync")
    except metadata.PackageNotFoundError:
        return "unknown"


class DaemonControl:
    def __init__(self, daemon: Daemon, engine: Engine) -> None:
        self._daemon = daemon
        self._engine = engine
        self._interval: Mapping[str, Any] = {}
        self._tries: Mapping[str, Any] = {}

    async def refresh(self) -> None:
        """Read the live settings the status shows (they live in the store)."""
        self._interval = (await self._engine.interval()).to_json()
        dns_tries, ssl_tries = await self._engine.tries()
        self._tries = {"dns_tries": dns_tries.value, "ssl_tries": ssl_tries.value}

    def live_status(self) -> Mapping[str, Any]:
        live = self._daemon.live
        held = live.held_plan
        report = live.last_report
        return {
            "version": _version(),
            "pid": os.getpid(),
            "started_at": live.started_at,
            "passes": live.passes,
            "pass_running": live.pass_running,
            "last_pass_at": live.last_pass_at,
            "last_good_pass_at": live.last_good_pass_at,
            "last_pass_error": live.last_pass_error,
            "in_sync": report.in_sync if report is not None else False,
            "held_plan": (
                {"id": held.id, "domains": list(held.domains), "reason": held.reason}
                if held is not None
                else None
            ),
            "held_removals": list(report.held_removals) if report is not None else [],
            "sources": {
                name: {
                    "healthy": snapshot.healthy,
                    "problems": [str(p) for p in snapshot.problems],
                    "domains": len(snapshot.domains),
                }
                for name, snapshot in self._engine.snapshots.items()
            },
            "interval": dict(self._interval),
            "tries": dict(self._tries),
            **self._role(),
            "closte": {
                "base_url": self._engine.settings.closte.base_url,
                "api_key": (
                    self._engine.settings.closte.api_key.masked
                    if self._engine.settings.closte.api_key is not None
                    else None
                ),
            },
        }

    def _role(self) -> Mapping[str, Any]:
        """Leader or standby among the nodes on one database ([cluster]); alone, it leads."""
        leadership = self._daemon.leadership
        if leadership is not None:
            return leadership.status()
        me = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self._daemon.live.started_at,
        }
        return {"role": "leader", "leader": me, "single_node": True}

    async def retry(self, domain: str) -> str:
        message = await self._engine.retry(domain)
        self._daemon.resync()
        self._daemon.wake_checks()
        self._note(f"retry asked for {domain}: {message}", domain=domain)
        return message

    async def resync(self) -> str:
        return self._daemon.resync()

    async def release(self, plan_id: str) -> str:
        message = self._daemon.release(plan_id)
        self._note(message, plan_id=plan_id)
        return message

    async def set_value(self, key: str, value: int, by: str) -> str:
        message = await self._engine.set_value(key, value, by)
        await self.refresh()
        self._daemon.wake_checks()
        self._note(f"{message} (by {by})")
        return message

    async def test_closte(self) -> Mapping[str, Any]:
        result = await self._engine.closte.test_connection()
        hint = result.hint
        return {
            "ok": result.ok,
            "kind": str(result.kind),
            "message": result.message or ("API key accepted" if result.ok else ""),
            "hint": hint.to_json() if hint is not None and result.kind != ResultKind.DONE else None,
        }

    def _note(self, message: str, **details: Any) -> None:
        self._engine.events.emit(make_event(Level.INFO, "control", message, **details))
