"""What each request does: argument checks, then the store (reads) or the daemon (changes).

Raises ``OpError`` with the code to answer with; anything else is a bug the server reports
as ``internal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from closte_sync.daemon.control.backend import DaemonActions
from closte_sync.daemon.control.peers import Peer
from closte_sync.daemon.control.rows import RowBuilder, event_row
from closte_sync.daemon.events import Level
from closte_sync.daemon.store import EventFilter, Store, StoreError
from closte_sync.daemon.store.event_log import MAX_PAGE
from closte_sync.shared.domains import DomainError, normalize_domain
from closte_sync.shared.hints import HINTS
from closte_sync.shared.protocol import LEVELS, ErrorCode, Op, check_setting

MAX_TEXT = 200  # a filter's search text
FLUSH_TIMEOUT_S = 2.0


class OpError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(message: str) -> OpError:
    return OpError(ErrorCode.BAD_ARGS, message)


def _str_arg(args: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = args.get(name)
    if value is None:
        if required:
            raise _bad(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a string")
    return value


def _int_arg(args: Mapping[str, Any], name: str, default: int | None) -> int | None:
    value = args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{name}' must be a whole number")
    return value


def _domain_arg(args: Mapping[str, Any]) -> str:
    raw = _str_arg(args, "domain", required=True)
    assert raw is not None
    try:
        return normalize_domain(raw)
    except DomainError as exc:
        raise _bad(f"domain {raw[:100]!r}: {exc}") from None


def event_filter(args: Mapping[str, Any]) -> EventFilter:
    """The ``filter`` argument of the event ops as a store filter (bound parameters)."""
    raw = args.get("filter") or {}
    if not isinstance(raw, dict):
        raise _bad("'filter' must be an object")
    unknown = set(raw) - {"level", "domain", "text", "since", "kind"}
    if unknown:
        raise _bad(f"unknown filter field(s): {', '.join(sorted(unknown))}")
    level = _str_arg(raw, "level")
    if level is not None and level not in LEVELS:
        raise _bad(f"filter level {level!r}: use one of {', '.join(LEVELS)}")
    text = _str_arg(raw, "text")
    if text is not None and len(text) > MAX_TEXT:
        raise _bad(f"filter text is longer than {MAX_TEXT} characters")
    since = raw.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int | float)):
        raise _bad("filter since must be a time in seconds since the epoch")
    domain = _str_arg(raw, "domain")
    if domain:
        try:
            domain = normalize_domain(domain)
        except DomainError as exc:
            raise _bad(f"filter domain {domain[:100]!r}: {exc}") from None
    return EventFilter(
        min_level=Level(level) if level else None,
        domain=domain or None,
        kind=_str_arg(raw, "kind") or None,
        since=float(since) if since is not None else None,
        text=text or None,
    )


def _limit(args: Mapping[str, Any]) -> int:
    limit = _int_arg(args, "limit", 100)
    assert limit is not None
    if not 1 <= limit <= MAX_PAGE:
        raise _bad(f"'limit' must be 1..{MAX_PAGE}")
    return limit


class Handlers:
    def __init__(self, store: Store, actions: DaemonActions, rows: RowBuilder) -> None:
        self._store = store
        self._actions = actions
        self._rows = rows

    def tries(self) -> Mapping[str, Any]:
        tries = self._actions.live_status().get("tries")
        return tries if isinstance(tries, Mapping) else {}

    async def handle(self, op: Op, args: Mapping[str, Any], peer: Peer) -> Any:
        try:
            return await self._handle(op, args, peer)
        except StoreError as exc:
            raise OpError(ErrorCode.INTERNAL, f"the store failed: {exc}") from None

    async def _handle(self, op: Op, args: Mapping[str, Any], peer: Peer) -> Any:
        match op:
            case Op.STATUS:
                return await self.status()
            case Op.DOMAINS:
                rows = await self._rows.rows(
                    self.tries(), stage=_str_arg(args, "stage"), state=_str_arg(args, "state")
                )
                return {"domains": [row.to_json() for row in rows]}
            case Op.DOMAIN:
                domain = _domain_arg(args)
                detail = await self._rows.detail(domain, self.tries())
                if detail is None:
                    raise OpError(ErrorCode.NOT_FOUND, f"{domain}: closte-sync does not know it")
                return detail
            case Op.EVENTS:
                page = await self._store.event_log.page(
                    event_filter(args),
                    before_id=_int_arg(args, "before_id", None),
                    limit=_limit(args),
                )
                return {"events": [event_row(e).to_json() for e in page]}
            case Op.EVENTS_AFTER:
                after = _int_arg(args, "after_id", 0)
                assert after is not None
                # A live push comes before the writer's batch; let it land first.
                with contextlib.suppress(TimeoutError, StoreError):
                    await asyncio.wait_for(self._store.events.flush(), FLUSH_TIMEOUT_S)
                page = await self._store.event_log.after(
                    after, event_filter(args), limit=_limit(args)
                )
                return {"events": [event_row(e).to_json() for e in page]}
            case Op.EVENT_COUNT:
                return {"count": await self._store.event_log.count(event_filter(args))}
            case Op.HINTS:
                return {"hints": [hint.to_json() for hint in HINTS.values()]}
            case Op.RETRY:
                domain = _domain_arg(args)
                if await self._store.ledger.get(domain) is None:
                    raise OpError(ErrorCode.NOT_FOUND, f"{domain}: closte-sync does not know it")
                return await self._change(self._actions.retry(domain))
            case Op.RESYNC:
                return await self._change(self._actions.resync())
            case Op.RELEASE:
                plan_id = _str_arg(args, "plan_id", required=True)
                assert plan_id is not None
                return await self._change(self._actions.release(plan_id))
            case Op.SET:
                key = _str_arg(args, "key", required=True)
                assert key is not None
                try:
                    name, value = check_setting(key, args.get("value"))
                except ValueError as exc:
                    raise _bad(str(exc)) from None
                by = f"{peer.user} (uid {peer.uid}) via the control socket"
                return await self._change(self._actions.set_value(name, value, by))
            case Op.TEST_CLOSTE:
                return dict(await self._actions.test_closte())
        raise OpError(ErrorCode.UNKNOWN_OP, f"op {op.value!r} is not served here")

    @staticmethod
    async def _change(action: Any) -> dict[str, str]:
        try:
            message = await action
        except ValueError as exc:
            raise OpError(ErrorCode.REFUSED, str(exc)) from None
        return {"message": str(message)}

    async def status(self) -> dict[str, Any]:
        entries = await self._store.ledger.entries()
        stages = {s.domain: str(s.stage) for s in await self._store.stages.all()}
        current = [e for e in entries if str(e.state) != "removed"]
        by_stage = Counter(stages.get(e.domain, "none") for e in current)
        return {
            "daemon": dict(self._actions.live_status()),
            "domains": {
                "total": len(current),
                "by_state": dict(Counter(str(e.state) for e in entries)),
                "by_stage": dict(by_stage),
                "with_errors": sum(1 for e in current if e.last_error),
            },
            "now": time.time(),
        }
