"""Several `closte-sync daemon` processes on one MariaDB database and one sandbox, each with
its own store and socket: what the fleet tests run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon_harness import DaemonProcess, Site
from db_fixtures import MYSQL_HOST, MYSQL_PORT, MySQLDatabase

from closte_sync.sandbox.state import RecordedRequest

LEADER_LINE = "leader now"
STEPPED_DOWN = "standby: stopped acting"


@dataclass
class Fleet:
    site: Site
    db: MySQLDatabase
    retry_s: str = "0.5"
    extra_env: dict[str, str] = field(default_factory=dict)
    nodes: list[DaemonProcess] = field(default_factory=list)
    started: int = 0

    def node_env(self, number: int) -> dict[str, str]:
        base = self.site.base / f"node{number}"
        return {
            "CLOSTE_SYNC_DATABASE_URL": f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{self.db.name}",
            "CLOSTE_SYNC_DATABASE_POLL_S": "0.2",
            "CLOSTE_SYNC_DOMAINS_FILE_PATH": "",
            "CLOSTE_SYNC_STORE_PATH": str(base / "state.sqlite3"),
            "CLOSTE_SYNC_SOCKET_PATH": str(base / "control.sock"),
            "CLOSTE_SYNC_CLUSTER_ENABLED": "true",
            "CLOSTE_SYNC_CLUSTER_RETRY_S": self.retry_s,
            **self.extra_env,
        }

    async def start(self, count: int = 1) -> list[DaemonProcess]:
        new = []
        for _ in range(count):
            self.started += 1
            node = await DaemonProcess.start(self.site, **self.node_env(self.started))
            self.nodes.append(node)
            new.append(node)
        await asyncio.gather(*(n.wait_for("ready:") for n in new))
        return new

    @property
    def alive(self) -> list[DaemonProcess]:
        return [n for n in self.nodes if n.process.returncode is None]

    def marks(self) -> dict[int, int]:
        """How many lines each node has logged so far (for ``leader(since=...)``)."""
        return {id(n): len(n.lines) for n in self.nodes}

    async def leader(
        self,
        among: Sequence[DaemonProcess] | None = None,
        *,
        since: dict[int, int] | None = None,
        timeout: float = 15.0,
    ) -> DaemonProcess:
        """The first of these nodes to log that it leads (after ``since``, or from now)."""
        nodes = list(among if among is not None else self.alive)
        marks = {id(n): len(n.lines) for n in nodes} | (since or {})
        waits = {
            asyncio.ensure_future(n.wait_for(LEADER_LINE, timeout=timeout, start=marks[id(n)])): n
            for n in nodes
        }
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        first = next(iter(done))
        first.result()  # raises when it timed out
        return waits[first]

    async def current_leader(self) -> DaemonProcess:
        """The node that leads now (it said so, and has not stepped down since)."""
        for node in self.alive:
            took = [i for i, line in enumerate(node.lines) if LEADER_LINE in line]
            lost = [i for i, line in enumerate(node.lines) if STEPPED_DOWN in line]
            if took and (not lost or lost[-1] < took[-1]):
                return node
        return await self.leader()

    async def close(self) -> None:
        await asyncio.gather(*(n.kill() for n in self.nodes))


def done_lines(node: DaemonProcess, operation: str = "add") -> list[str]:
    return [line for line in node.lines if f"{operation} " in line and ": done" in line]


def calls(requests: Sequence[RecordedRequest], endpoint: str) -> list[RecordedRequest]:
    return [r for r in requests if r.path.endswith(endpoint)]


def doubled_adds(requests: Sequence[RecordedRequest], already: set[str]) -> list[str]:
    """Adds sent while the alias was already there by our own earlier add (the same intent
    sent twice); and removes of an alias that was not there. Walks the log in order."""
    held = set(already)
    wrong = []
    for r in sorted(requests, key=lambda r: r.time):
        name = r.fields.get("domain", "")
        if r.outcome not in ("ok", "error") or not name:
            continue
        if r.path.endswith("/adddomainalias"):
            if name in held:  # Closte answers "already exists": sent again all the same
                wrong.append(f"add {name} again")
            held.add(name)
        elif r.path.endswith("/deletedomainalias") and r.outcome == "ok":
            if name not in held:
                wrong.append(f"remove {name} not there")
            held.discard(name)
    return wrong
