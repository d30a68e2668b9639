"""Each domain's stage (the plugin's names) and the history of the checks behind it.

The stage row says where a domain is and when to look next; the ``checks`` table keeps
every DNS, TLS and API check with its result, so the TUI can show *why* a domain is stuck.
``record_check`` writes the history row and the new stage in one transaction.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiosqlite

from closte_sync.daemon.store.database import Database, fetch_one
from closte_sync.daemon.store.errors import StoreError
from closte_sync.daemon.store.scrubber import Scrubber
from closte_sync.shared.domains import normalize_domain

MAX_SUMMARY_LENGTH = 500


class Stage(StrEnum):
    """The plugin's stage names (wu_domain_mappings.stage)."""

    CHECKING_DNS = "checking-dns"
    CHECKING_SSL_CERT = "checking-ssl-cert"
    DONE = "done"
    DONE_WITHOUT_SSL = "done-without-ssl"
    FAILED = "failed"
    SSL_FAILED = "ssl-failed"


class CheckKind(StrEnum):
    DNS = "dns"
    TLS = "tls"
    API = "api"


@dataclass(frozen=True)
class StageEntry:
    domain: str
    stage: Stage
    tries: int
    next_check_at: float | None  # None: nothing planned (done, failed)
    stage_since: float
    last_check_at: float | None
    last_summary: str


@dataclass(frozen=True)
class StageUpdate:
    """The stage a domain moves to after a check (all three values are set)."""

    stage: Stage | str
    tries: int
    next_check_at: float | None


@dataclass(frozen=True)
class CheckRecord:
    id: int
    time: float
    domain: str
    kind: CheckKind
    ok: bool
    summary: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class CheckWrite:
    """One check's result to record, with the stage it moves the domain to (if any)."""

    domain: str
    kind: CheckKind | str
    ok: bool
    summary: str
    details: Mapping[str, Any]
    update: StageUpdate | None = None


def _stage_entry(row: aiosqlite.Row) -> StageEntry:
    return StageEntry(
        domain=row["domain"],
        stage=Stage(row["stage"]),
        tries=row["tries"],
        next_check_at=row["next_check_at"],
        stage_since=row["stage_since"],
        last_check_at=row["last_check_at"],
        last_summary=row["last_summary"],
    )


def _check_record(row: aiosqlite.Row) -> CheckRecord:
    return CheckRecord(
        id=row["id"],
        time=row["time"],
        domain=row["domain"],
        kind=CheckKind(row["kind"]),
        ok=bool(row["ok"]),
        summary=row["summary"],
        details=json.loads(row["details"]),
    )


_STAGE_COLUMNS = "domain, stage, tries, next_check_at, stage_since, last_check_at, last_summary"


async def _fetch(conn: aiosqlite.Connection, domain: str) -> StageEntry | None:
    row = await fetch_one(conn, f"SELECT {_STAGE_COLUMNS} FROM stages WHERE domain = ?", (domain,))
    return _stage_entry(row) if row is not None else None


async def _require_ledger_row(conn: aiosqlite.Connection, domain: str) -> None:
    if await fetch_one(conn, "SELECT 1 FROM domains WHERE domain = ?", (domain,)) is None:
        raise StoreError(f"{domain}: no stage without a ledger row; record it with want()")


class Stages:
    def __init__(self, db: Database, scrubber: Scrubber) -> None:
        self._db = db
        self._scrub = scrubber

    async def get(self, domain: str) -> StageEntry | None:
        name = normalize_domain(domain)
        async with self._db.reading(f"reading the stage of {name}") as conn:
            return await _fetch(conn, name)

    async def all(self) -> list[StageEntry]:
        rows = await self._db.fetch_all(
            "reading stages", f"SELECT {_STAGE_COLUMNS} FROM stages ORDER BY domain"
        )
        return [_stage_entry(row) for row in rows]

    async def due(self, now: float | None = None, *, limit: int = 100) -> list[StageEntry]:
        """Domains whose next check time has come, the longest overdue first."""
        at = time.time() if now is None else now
        rows = await self._db.fetch_all(
            "reading due checks",
            f"SELECT {_STAGE_COLUMNS} FROM stages WHERE next_check_at IS NOT NULL "
            "AND next_check_at <= ? ORDER BY next_check_at LIMIT ?",
            (at, max(1, limit)),
        )
        return [_stage_entry(row) for row in rows]

    async def set_stage(
        self, domain: str, update: StageUpdate, *, now: float | None = None
    ) -> StageEntry:
        """Put ``domain`` in a stage without a check (a new domain starts 'checking-dns')."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"setting the stage of {name}") as conn:
            await self._upsert(conn, name, update, at, check=None)
            entry = await _fetch(conn, name)
        assert entry is not None
        return entry

    async def record_check(
        self,
        domain: str,
        kind: CheckKind | str,
        *,
        ok: bool,
        summary: str,
        details: Mapping[str, Any] | None = None,
        update: StageUpdate | None = None,
        now: float | None = None,
    ) -> StageEntry | None:
        """Keep a check's result and, with ``update``, move the stage, atomically."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        write = self._prepare(CheckWrite(name, kind, ok, summary, details or {}, update), at)
        async with self._db.transaction(f"recording a {kind} check of {name}") as conn:
            if update is not None:
                await _require_ledger_row(conn, name)
            await conn.execute(_INSERT_CHECK, write.check)
            await conn.execute(write.statement, write.stage)
            return await _fetch(conn, name)

    async def history(self, domain: str, *, limit: int = 50) -> list[CheckRecord]:
        """The newest checks of ``domain`` first."""
        name = normalize_domain(domain)
        rows = await self._db.fetch_all(
            f"reading the check history of {name}",
            "SELECT id, time, domain, kind, ok, summary, details FROM checks "
            "WHERE domain = ? ORDER BY time DESC, id DESC LIMIT ?",
            (name, max(1, limit)),
        )
        return [_check_record(row) for row in rows]

    async def record_many(self, writes: list[CheckWrite], *, now: float | None = None) -> int:
        """Record many checks (and their stage moves) in one transaction, a few statements
        for the whole batch, each domain's writes in their order. A domain no longer
        tracked by now (it left while being checked) has nothing left to record: its
        writes are skipped, so a check that ends late cannot bring a stage row back.
        Returns how many writes were kept."""
        if not writes:
            return 0
        at = time.time() if now is None else now
        # Everything is made ready before the transaction, which holds the write lock.
        prepared = [self._prepare(write, at) for write in writes]
        names = sorted({write.domain for write in writes})
        async with self._db.transaction(f"recording {len(writes)} checks") as conn:
            rows = await conn.execute_fetchall(
                "SELECT domain FROM stages WHERE domain IN (SELECT value FROM json_each(?))",
                (json.dumps(names),),
            )
            known = {row["domain"] for row in rows}
            kept = [p for p in prepared if p.domain in known]
            await conn.executemany(_INSERT_CHECK, [p.check for p in kept])
            for statement, run in itertools.groupby(kept, key=lambda p: p.statement):
                await conn.executemany(statement, [p.stage for p in run])
        return len(kept)

    def _prepare(self, write: CheckWrite, at: float) -> _PreparedWrite:
        text = self._scrub.text(write.summary)[:MAX_SUMMARY_LENGTH]
        check = (
            at,
            write.domain,
            CheckKind(write.kind).value,
            int(write.ok),
            text,
            self._scrub.json(write.details),
        )
        if write.update is None:
            return _PreparedWrite(write.domain, check, _NOTE_CHECK, (at, text, write.domain))
        stage = _upsert_params(write.domain, write.update, at, text)
        return _PreparedWrite(write.domain, check, _UPSERT_STAGE, stage)

    async def track(
        self, starts: Mapping[str, Stage], *, now: float | None = None
    ) -> tuple[list[str], list[str]]:
        """Keep a stage row for exactly the names in ``starts`` (the desired domains Closte
        holds): new ones begin at their given stage, due now; rows of other names go.
        Returns (started, dropped). One transaction; nothing written when nothing changes."""
        at = time.time() if now is None else now
        async with self._db.transaction("tracking stages") as conn:
            rows = await conn.execute_fetchall("SELECT domain FROM stages")
            have = {row["domain"] for row in rows}
            started = sorted(set(starts) - have)
            dropped = sorted(have - set(starts))
            if started:
                await conn.executemany(
                    "INSERT INTO stages (domain, stage, tries, next_check_at, stage_since) "
                    "VALUES (?, ?, 0, ?, ?)",
                    [(name, Stage(starts[name]).value, at, at) for name in started],
                )
            if dropped:
                await conn.executemany(
                    "DELETE FROM stages WHERE domain = ?", [(name,) for name in dropped]
                )
        return started, dropped

    async def begin(self, domain: str, stage: Stage, *, now: float | None = None) -> bool:
        """Start tracking one domain at ``stage``, due now, unless it is tracked already.
        True when it was new."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"starting the checks of {name}") as conn:
            await _require_ledger_row(conn, name)
            cursor = await conn.execute(
                "INSERT INTO stages (domain, stage, tries, next_check_at, stage_since) "
                "VALUES (?, ?, 0, ?, ?) ON CONFLICT (domain) DO NOTHING",
                (name, Stage(stage).value, at, at),
            )
            return cursor.rowcount == 1

    async def next_due_at(self) -> float | None:
        row = await self._db.fetch_one(
            "reading the next check time",
            "SELECT min(next_check_at) FROM stages WHERE next_check_at IS NOT NULL",
        )
        return None if row is None or row[0] is None else float(row[0])

    async def reschedule(self, interval_s: float, *, now: float | None = None) -> int:
        """A new interval applies to waiting checks at once: none waits longer than
        ``interval_s`` after its last check. Returns how many moved."""
        at = time.time() if now is None else now
        async with self._db.transaction("rescheduling checks") as conn:
            cursor = await conn.execute(
                "UPDATE stages SET next_check_at = max(?, coalesce(last_check_at, ?) + ?) "
                "WHERE stage IN ('checking-dns', 'checking-ssl-cert') "
                "AND next_check_at IS NOT NULL "
                "AND next_check_at > max(?, coalesce(last_check_at, ?) + ?)",
                (at, at, interval_s, at, at, interval_s),
            )
            return cursor.rowcount

    async def restart(self, domain: str, *, now: float | None = None) -> StageEntry | None:
        """An operator's retry: back to checking DNS, tries from zero, due now."""
        name = normalize_domain(domain)
        at = time.time() if now is None else now
        async with self._db.transaction(f"restarting the checks of {name}") as conn:
            if await _fetch(conn, name) is None:
                return None
            await self._upsert(conn, name, StageUpdate(Stage.CHECKING_DNS, 0, at), at, check=None)
            return await _fetch(conn, name)

    @staticmethod
    async def _upsert(
        conn: aiosqlite.Connection,
        name: str,
        update: StageUpdate,
        at: float,
        *,
        check: str | None,
    ) -> None:
        await _require_ledger_row(conn, name)
        await conn.execute(_UPSERT_STAGE, _upsert_params(name, update, at, check))


_INSERT_CHECK = (
    "INSERT INTO checks (time, domain, kind, ok, summary, details) VALUES (?, ?, ?, ?, ?, ?)"
)
_NOTE_CHECK = "UPDATE stages SET last_check_at = ?, last_summary = ? WHERE domain = ?"


@dataclass(frozen=True)
class _PreparedWrite:
    """One CheckWrite as the rows it becomes."""

    domain: str
    check: tuple[object, ...]  # the checks row
    statement: str  # _UPSERT_STAGE (the stage moves) or _NOTE_CHECK (it stays)
    stage: tuple[object, ...]


# stage_since moves only when the stage really changes; a check's time and summary are kept
# only when there was a check.
_UPSERT_STAGE = (
    "INSERT INTO stages (domain, stage, tries, next_check_at, stage_since, "
    "last_check_at, last_summary) VALUES (?, ?, ?, ?, ?, ?, coalesce(?, '')) "
    "ON CONFLICT (domain) DO UPDATE SET "
    "stage_since = CASE WHEN stage = excluded.stage THEN stage_since "
    "ELSE excluded.stage_since END, "
    "stage = excluded.stage, tries = excluded.tries, "
    "next_check_at = excluded.next_check_at, "
    "last_check_at = coalesce(excluded.last_check_at, last_check_at), "
    "last_summary = coalesce(?, last_summary)"
)


def _upsert_params(
    name: str, update: StageUpdate, at: float, check: str | None
) -> tuple[object, ...]:
    stage = Stage(update.stage)
    if update.tries < 0:
        raise StoreError(f"{name}: tries must be >= 0, got {update.tries}")
    return (
        name,
        stage.value,
        update.tries,
        update.next_check_at,
        at,
        at if check is not None else None,
        check,
        check,
    )
