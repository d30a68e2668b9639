"""Domain rows, details and event pages for the socket, built from the store.

The list view needs, beside the ledger and stage rows, each domain's certificate expiry
and hint; those come from its check history and events, so they are kept in a small cache
that ``forget`` clears when the daemon reports the domain changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from closte_sync.daemon.events import Level
from closte_sync.daemon.store import (
    CheckRecord,
    EventFilter,
    LedgerEntry,
    StageEntry,
    Store,
    StoredEvent,
)
from closte_sync.shared.hints import HINTS
from closte_sync.shared.protocol import DomainRow, EventRow

# Keys the daemon's checks put in their details (the TUI shows them when present).
EXPIRY_KEYS = ("not_after", "expires_at", "cert_expires_at")
HINT_KEY = "hint"
DETAIL_EVENTS = 50
DETAIL_CHECKS = 20


@dataclass(frozen=True)
class _Extras:
    cert_expires_at: float | None
    hint_id: str | None


def event_row(event: StoredEvent) -> EventRow:
    return EventRow(
        id=event.id,
        time=event.time,
        level=str(event.level),
        kind=event.kind,
        message=event.message,
        domain=event.domain,
        details=event.details,
    )


def check_json(check: CheckRecord) -> dict[str, Any]:
    return {
        "id": check.id,
        "time": check.time,
        "kind": str(check.kind),
        "ok": check.ok,
        "summary": check.summary,
        "details": dict(check.details),
    }


def expiry_of(details: Mapping[str, Any]) -> float | None:
    """A certificate's end of validity from a TLS check's details (epoch or ISO 8601)."""
    for key in EXPIRY_KEYS:
        value = details.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp()
    return None


def _hint_id(value: object) -> str | None:
    return value if isinstance(value, str) and value in HINTS else None


def hint_from(checks: list[CheckRecord], events: list[StoredEvent]) -> str | None:
    """The hint for the domain's newest failure: named by the check or the event, or
    'dns-not-pointing' for a failed DNS check that names none."""
    if checks and not checks[0].ok:
        named = _hint_id(checks[0].details.get(HINT_KEY))
        if named:
            return named
        if str(checks[0].kind) == "dns":
            return "dns-not-pointing"
    for event in events:
        named = _hint_id(event.details.get(HINT_KEY))
        if named:
            return named
    return None


def max_tries_for(stage: str | None, tries: Mapping[str, Any]) -> int | None:
    key = {"checking-dns": "dns_tries", "checking-ssl-cert": "ssl_tries"}.get(stage or "")
    value = tries.get(key) if key else None
    return value if isinstance(value, int) else None


class RowBuilder:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._extras: dict[str, _Extras] = {}

    def forget(self, domain: str) -> None:
        self._extras.pop(domain, None)

    async def _extras_of(self, domain: str) -> _Extras:
        cached = self._extras.get(domain)
        if cached is not None:
            return cached
        checks = await self._store.stages.history(domain, limit=DETAIL_CHECKS)
        problems = await self._store.event_log.page(
            EventFilter(domain=domain, min_level=Level.WARNING), limit=5
        )
        tls = next((c for c in checks if str(c.kind) == "tls"), None)
        extras = _Extras(
            cert_expires_at=expiry_of(tls.details) if tls else None,
            hint_id=hint_from(checks, problems),
        )
        self._extras[domain] = extras
        return extras

    def _row(
        self,
        entry: LedgerEntry,
        stage: StageEntry | None,
        extras: _Extras,
        tries: Mapping[str, Any],
    ) -> DomainRow:
        stage_name = str(stage.stage) if stage else None
        hint = HINTS.get(extras.hint_id) if extras.hint_id else None
        return DomainRow(
            domain=entry.domain,
            state=str(entry.state),
            origin=str(entry.origin),
            added_by_us=entry.added_by_us,
            place=entry.place,
            last_error=entry.last_error,
            attempts=entry.attempts,
            last_change=entry.last_change,
            stage=stage_name,
            tries=stage.tries if stage else 0,
            max_tries=max_tries_for(stage_name, tries),
            stage_since=stage.stage_since if stage else None,
            next_check_at=stage.next_check_at if stage else None,
            last_check_at=stage.last_check_at if stage else None,
            last_summary=stage.last_summary if stage else "",
            cert_expires_at=extras.cert_expires_at,
            hint=hint.to_json() if hint else None,
        )

    async def rows(
        self,
        tries: Mapping[str, Any],
        *,
        stage: str | None = None,
        state: str | None = None,
    ) -> list[DomainRow]:
        entries = await self._store.ledger.entries()
        stages = {s.domain: s for s in await self._store.stages.all()}
        result = []
        for entry in entries:
            found = stages.get(entry.domain)
            if stage is not None and (str(found.stage) if found else None) != stage:
                continue
            if state is not None and str(entry.state) != state:
                continue
            extras = await self._extras_of(entry.domain)
            result.append(self._row(entry, found, extras, tries))
            await asyncio.sleep(0)  # thousands of domains: let the daemon's tasks run between
        return result

    async def row(self, domain: str, tries: Mapping[str, Any]) -> DomainRow | None:
        entry = await self._store.ledger.get(domain)
        if entry is None:
            return None
        stage = await self._store.stages.get(domain)
        return self._row(entry, stage, await self._extras_of(entry.domain), tries)

    async def detail(self, domain: str, tries: Mapping[str, Any]) -> dict[str, Any] | None:
        """The row, its newest events and checks, its DNS answers against what is
        expected, its certificate, and the hints for its failures."""
        self.forget(domain)
        row = await self.row(domain, tries)
        if row is None:
            return None
        checks = await self._store.stages.history(row.domain, limit=DETAIL_CHECKS)
        events = await self._store.event_log.latest_for_domain(row.domain, DETAIL_EVENTS)
        dns = next((c for c in checks if str(c.kind) == "dns"), None)
        tls = next((c for c in checks if str(c.kind) == "tls"), None)
        hint_ids: list[str] = []
        for named in [row.hint.get("id") if row.hint else None] + [
            _hint_id(c.details.get(HINT_KEY)) for c in checks if not c.ok
        ]:
            if named and named not in hint_ids:
                hint_ids.append(named)
        return {
            "row": row.to_json(),
            "events": [event_row(e).to_json() for e in events],
            "checks": [check_json(c) for c in checks],
            "dns": check_json(dns) if dns else None,
            "certificate": check_json(tls) if tls else None,
            "hints": [HINTS[h].to_json() for h in hint_ids],
        }
