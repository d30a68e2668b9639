"""The hand-over record in the network's own database.

``{base_prefix}closte_sync_ledger`` holds, per domain, the leader's ledger row: whether
closte-sync added it (``added_by_us``), the intent in flight (``adding``/``removing`` with
``attempts``) and when. The leader writes each intent *before* its Closte call and the
outcome after, on its lock connection, so a daemon that lost the lock cannot write either.
``{base_prefix}closte_sync_leader`` is one row: who holds the lock, since when.

The local SQLite ledger stays the one the pass reads; these rows are what a new leader
merges into it (``merge``) before its first pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from closte_sync.daemon.cluster.lock import LeaderLock, LockUnavailable
from closte_sync.daemon.store import LedgerEntry
from closte_sync.daemon.store.ledger import LEDGER_FIELDS, entry_of, values_of

# The grant the database user needs (doctor names it): CREATE once, then these.
GRANT_PRIVILEGES = ("CREATE", "SELECT", "INSERT", "UPDATE", "DELETE")

_COLUMNS = LEDGER_FIELDS


def ledger_table(base_prefix: str) -> str:
    return f"{base_prefix}closte_sync_ledger"


def leader_table(base_prefix: str) -> str:
    return f"{base_prefix}closte_sync_leader"


@dataclass(frozen=True)
class LeaderInfo:
    host: str
    pid: int
    since: float

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "since": self.since}


def _create_ledger(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS `{table}` ("
        " domain VARCHAR(255) NOT NULL PRIMARY KEY,"
        " wildcard TINYINT NOT NULL DEFAULT 0,"
        " state VARCHAR(16) NOT NULL,"
        " origin VARCHAR(16) NOT NULL,"
        " added_by_us TINYINT NOT NULL DEFAULT 0,"
        " place VARCHAR(1000) NOT NULL DEFAULT '',"
        " first_seen DOUBLE NOT NULL,"
        " last_change DOUBLE NOT NULL,"
        " last_error TEXT NULL,"
        " attempts INT NOT NULL DEFAULT 0,"
        " failures INT NOT NULL DEFAULT 0,"
        " retry_at DOUBLE NULL,"
        " refusal VARCHAR(64) NULL,"
        " written_by VARCHAR(255) NOT NULL DEFAULT ''"
        ") DEFAULT CHARSET=utf8mb4"
    )


def _create_leader(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS `{table}` ("
        " id TINYINT NOT NULL PRIMARY KEY,"
        " host VARCHAR(255) NOT NULL,"
        " pid INT NOT NULL,"
        " since DOUBLE NOT NULL,"
        " connection_id BIGINT NOT NULL"
        ") DEFAULT CHARSET=utf8mb4"
    )


def _params(entry: LedgerEntry, writer: str) -> tuple[Any, ...]:
    values = list(values_of(entry))
    values[_COLUMNS.index("place")] = entry.place[:1000]  # the shared column's length
    return (*values, writer)


class SharedTables:
    """Reads and writes of the shared tables, all on the lock's connection."""

    def __init__(self, lock: LeaderLock, base_prefix: str, writer: str) -> None:
        self._lock = lock
        self.ledger = ledger_table(base_prefix)
        self.leader = leader_table(base_prefix)
        self._writer = writer  # host:pid, for whoever reads the table by hand

    async def missing(self) -> list[str]:
        rows = await self._lock.run(
            "SELECT TABLE_NAME FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (%s, %s)",
            (self.ledger, self.leader),
        )
        there = {str(r[0]) for r in rows}
        return [t for t in (self.ledger, self.leader) if t not in there]

    async def access_problem(self) -> str | None:
        """Why the leader could not keep the shared tables, or None (changes nothing).
        Statements that match no row still need their privilege."""
        missing = await self.missing()
        if missing and not await self._may_create():
            return f"{', '.join(missing)} not there yet, and this user may not CREATE tables"
        for table in (t for t in (self.ledger, self.leader) if t not in missing):
            for probe in (
                f"SELECT 1 FROM `{table}` WHERE 1 = 0",
                f"INSERT INTO `{table}` SELECT * FROM `{table}` WHERE 1 = 0",
                f"UPDATE `{table}` SET {'domain = domain' if table == self.ledger else 'id = id'}"
                " WHERE 1 = 0",
                f"DELETE FROM `{table}` WHERE 1 = 0",
            ):
                try:
                    await self._lock.run(probe)
                except LockUnavailable as exc:
                    return f"{probe.split()[0]} on {table} refused: {exc}"
        return None

    async def _may_create(self) -> bool:
        rows = await self._lock.run("SHOW GRANTS FOR CURRENT_USER()")
        for (grant,) in rows:
            text = str(grant).upper()
            privileges = text.split(" ON ", 1)[0]
            if "ALL PRIVILEGES" in privileges or re.search(
                r"\bCREATE\b(?! (TEMPORARY|VIEW|ROUTINE|USER|TABLESPACE))", privileges
            ):
                return True
        return False

    async def create(self) -> None:
        # Asked first: CREATE TABLE IF NOT EXISTS on an existing table leaves a warning.
        missing = await self.missing()
        if self.ledger in missing:
            await self._lock.run(_create_ledger(self.ledger))
        if self.leader in missing:
            await self._lock.run(_create_leader(self.leader))

    async def read(self) -> dict[str, LedgerEntry]:
        rows = await self._lock.run(f"SELECT {', '.join(_COLUMNS)} FROM `{self.ledger}`")
        return {entry.domain: entry for entry in map(entry_of, rows)}

    async def write(self, entries: Iterable[LedgerEntry]) -> int:
        batch = [_params(e, self._writer) for e in entries]
        if not batch:
            return 0
        columns = (*_COLUMNS, "written_by")
        updates = ", ".join(f"{c} = VALUES({c})" for c in columns[1:])
        await self._lock.run(
            f"INSERT INTO `{self.ledger}` ({', '.join(columns)})"
            f" VALUES ({', '.join('%s' for _ in columns)}) ON DUPLICATE KEY UPDATE {updates}",
            batch,
            many=True,
        )
        return len(batch)

    async def claim(self, info: LeaderInfo, connection_id: int) -> None:
        await self._lock.run(
            f"REPLACE INTO `{self.leader}` (id, host, pid, since, connection_id)"
            " VALUES (1, %s, %s, %s, %s)",
            (info.host, info.pid, info.since, connection_id),
        )

    async def current_leader(self) -> LeaderInfo | None:
        """The row of the daemon that holds the lock now; None when nobody holds it or the
        row is an earlier leader's (it has not written its row yet)."""
        holder = await self._lock.holder_id()
        if holder is None:
            return None
        rows = await self._lock.run(
            f"SELECT host, pid, since, connection_id FROM `{self.leader}` WHERE id = 1"
        )
        if not rows or int(rows[0][3]) != holder:
            return None
        host, pid, since, _ = rows[0]
        return LeaderInfo(str(host), int(pid), float(since))
