"""The control socket's protocol: JSON lines, versioned, defined once for both sides.

Every message is one JSON object on one line (UTF-8, ``\\n``-terminated), with ``"v"``,
the protocol version.

    client -> server   {"v": 1, "id": 7, "op": "domains", "args": {"stage": "failed"}}
    server -> client   {"v": 1, "id": 7, "ok": true, "result": {...}}
                       {"v": 1, "id": 7, "ok": false, "error": {"code": "forbidden",
                                                                "message": "..."}}
    server pushes      {"v": 1, "push": "hello" | "event" | "domain" | "dropped", "data": {...}}

The server speaks first with a ``hello`` push (daemon version, the peer's role and what it
may do). ``subscribe`` starts pushes of new events (``event``) and changed domain rows
(``domain``) on the same connection; a subscriber that cannot keep up is sent a
``dropped`` push and disconnected, so it can never stall the daemon. Request ids are
echoed; an error the server cannot tie to a request (a malformed line) has ``"id": null``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

PROTOCOL_VERSION: Final = 1
# A request is small; anything longer is refused unread (the rest of the line is skipped).
MAX_REQUEST_BYTES: Final = 64 * 1024
# Answers can carry a page of events or every domain; clients accept this much per line.
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024


class Role(StrEnum):
    ADMIN = "admin"  # root, the daemon's user, admin_group: may look and change
    READER = "reader"  # group: may only look


class ErrorCode(StrEnum):
    MALFORMED = "malformed"  # not a JSON object, or a field of the wrong type
    TOO_LARGE = "too_large"  # the line is longer than MAX_REQUEST_BYTES
    VERSION = "version"  # a protocol version this side does not speak
    UNKNOWN_OP = "unknown_op"
    BAD_ARGS = "bad_args"  # the op exists; its arguments are wrong
    FORBIDDEN = "forbidden"  # the peer's role may not do this
    NOT_FOUND = "not_found"  # no such domain
    REFUSED = "refused"  # the daemon said no (wrong plan id, value out of range)
    BUSY = "busy"  # too many requests in flight on this connection
    INTERNAL = "internal"  # a bug or a store failure; the message says which


class Op(StrEnum):
    # reading
    STATUS = "status"
    DOMAINS = "domains"
    DOMAIN = "domain"
    EVENTS = "events"  # a page, newest first, keyset by before_id
    EVENTS_AFTER = "events_after"  # newer than after_id, oldest first
    EVENT_COUNT = "event_count"
    HINTS = "hints"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    # changing (admin only)
    RETRY = "retry"
    RESYNC = "resync"
    RELEASE = "release"
    SET = "set"
    TEST_CLOSTE = "test_closte"


CHANGING_OPS: Final = frozenset({Op.RETRY, Op.RESYNC, Op.RELEASE, Op.SET, Op.TEST_CLOSTE})


class Push(StrEnum):
    HELLO = "hello"
    EVENT = "event"
    DOMAIN = "domain"
    DROPPED = "dropped"


class Topic(StrEnum):
    EVENTS = "events"
    DOMAINS = "domains"


# Live settings an operator may set, with their allowed range (inclusive).
SETTABLE: Final[Mapping[str, tuple[int, int]]] = {
    "interval_s": (10, 300),
    "dns_tries": (1, 100),
    "ssl_tries": (1, 100),
}
# The CLI's spellings (`closte-sync set interval 30`).
SETTING_ALIASES: Final[Mapping[str, str]] = {
    "interval": "interval_s",
    "interval-s": "interval_s",
    "dns-tries": "dns_tries",
    "ssl-tries": "ssl_tries",
}


def check_setting(key: str, value: object) -> tuple[str, int]:
    """The canonical key and the value, or ValueError saying what is allowed."""
    name = SETTING_ALIASES.get(key, key)
    if name not in SETTABLE:
        raise ValueError(f"unknown setting {key!r}: use one of {', '.join(SETTABLE)}")
    low, high = SETTABLE[name]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{name}: expected a whole number from {low} to {high}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(
            f"{name}: expected a whole number from {low} to {high}, got {value!r}"
        ) from None
    if not low <= number <= high:
        raise ValueError(f"{name}: {number} is outside {low}..{high}")
    return name, number


class ProtocolError(Exception):
    """A message that breaks the protocol; ``request_id`` when it could be read."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    id: int | str
    op: Op
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "id": self.id, "op": self.op.value, "args": dict(self.args)}


@dataclass(frozen=True)
class Reply:
    """An answer to one request: ``result`` when ok, else ``code`` and ``message``."""

    id: int | str | None
    ok: bool
    result: Any = None
    code: ErrorCode | str | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"v": PROTOCOL_VERSION, "id": self.id, "ok": True, "result": self.result}
        code = self.code.value if isinstance(self.code, ErrorCode) else self.code
        return {
            "v": PROTOCOL_VERSION,
            "id": self.id,
            "ok": False,
            "error": {"code": code, "message": self.message},
        }


@dataclass(frozen=True)
class PushMessage:
    push: Push | str
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        kind = self.push.value if isinstance(self.push, Push) else self.push
        return {"v": PROTOCOL_VERSION, "push": kind, "data": dict(self.data)}


Message = Reply | PushMessage


def encode(message: Request | Reply | PushMessage) -> bytes:
    """One line of compact JSON. ``default=str`` turns a stray Secret into its mask."""
    text = json.dumps(message.to_json(), separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode() + b"\n"


def _object(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"not JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser goes: not a message of ours
        raise ProtocolError(ErrorCode.MALFORMED, "not JSON we read: nested too deep") from None
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "a message must be a JSON object")
    return value


def _version(obj: Mapping[str, Any], request_id: int | str | None) -> None:
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.VERSION,
            f"protocol version {version!r} is not spoken here (this side speaks "
            f"{PROTOCOL_VERSION})",
            request_id,
        )


def decode_request(line: bytes) -> Request:
    """A request, or ProtocolError with the code to answer with."""
    obj = _object(line)
    raw_id = obj.get("id")
    request_id = raw_id if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else None
    _version(obj, request_id)
    if request_id is None:
        raise ProtocolError(ErrorCode.MALFORMED, "'id' must be a number or a string")
    op = obj.get("op")
    if not isinstance(op, str):
        raise ProtocolError(ErrorCode.MALFORMED, "'op' must be a string", request_id)
    try:
        known = Op(op)
    except ValueError:
        raise ProtocolError(
            ErrorCode.UNKNOWN_OP,
            f"unknown op {op[:60]!r}; known: {', '.join(o.value for o in Op)}",
            request_id,
        ) from None
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "'args' must be a JSON object", request_id)
    return Request(request_id, known, args)


def decode_message(line: bytes) -> Message:
    """What the server sent: a reply to a request, or a push."""
    obj = _object(line)
    _version(obj, obj.get("id") if isinstance(obj.get("id"), int | str) else None)
    if "push" in obj:
        data = obj.get("data", {})
        if not isinstance(obj["push"], str) or not isinstance(data, dict):
            raise ProtocolError(ErrorCode.MALFORMED, "a push needs a name and a data object")
        try:
            kind: Push | str = Push(obj["push"])
        except ValueError:
            kind = obj["push"]  # a newer server's push: the client ignores what it does not know
        return PushMessage(kind, data)
    if "ok" not in obj or not isinstance(obj["ok"], bool):
        raise ProtocolError(ErrorCode.MALFORMED, "a reply needs 'ok'")
    reply_id = obj.get("id")
    if reply_id is not None and not isinstance(reply_id, int | str):
        raise ProtocolError(ErrorCode.MALFORMED, "'id' must be a number, a string or null")
    if obj["ok"]:
        return Reply(reply_id, True, obj.get("result"))
    error = obj.get("error")
    if not isinstance(error, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "an error reply needs an 'error' object")
    code = str(error.get("code", ErrorCode.INTERNAL))
    try:
        known_code: ErrorCode | str = ErrorCode(code)
    except ValueError:
        known_code = code
    return Reply(reply_id, False, code=known_code, message=str(error.get("message", "")))


class LineSplitter:
    """Splits a byte stream into lines of at most ``limit`` bytes.

    A longer line is not kept: its bytes are skipped up to the next newline and it comes
    out once as ``None``, so one huge message costs neither memory nor the connection.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | None]:
        lines: list[bytes | None] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            if self._skipping:
                self._skipping = False
            elif len(self._buffer) + len(piece) > self._limit:
                lines.append(None)
            else:
                self._buffer += piece
                lines.append(bytes(self._buffer))
            self._buffer.clear()
            start = end + 1
        rest = data[start:]
        if not self._skipping:
            if len(self._buffer) + len(rest) > self._limit:
                self._buffer.clear()
                self._skipping = True
                lines.append(None)
            else:
                self._buffer += rest
        return lines


# -- what the reading ops return ---------------------------------------------------------

FAILED_STAGES: Final = frozenset({"failed", "ssl-failed"})
CHECKING_STAGES: Final = frozenset({"checking-dns", "checking-ssl-cert"})
# A domain still checking after this long is "stuck" on the troubleshooting screen: SSL
# normally takes Closte 5-10 minutes, DNS a few more.
STUCK_AFTER_S: Final = 30 * 60


def _opt_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class DomainRow:
    """One domain as the TUI and the CLI show it: ledger, stage and last check together.

    ``state`` and ``stage`` are plain strings: a newer daemon may add states."""

    domain: str
    state: str
    origin: str
    added_by_us: bool = False
    place: str = ""
    last_error: str | None = None
    attempts: int = 0
    last_change: float | None = None
    stage: str | None = None
    tries: int = 0
    max_tries: int | None = None
    stage_since: float | None = None
    next_check_at: float | None = None
    last_check_at: float | None = None
    last_summary: str = ""
    cert_expires_at: float | None = None
    hint: Mapping[str, str] | None = None  # shared.hints.Hint.to_json()

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "state": self.state,
            "origin": self.origin,
            "added_by_us": self.added_by_us,
            "place": self.place,
            "last_error": self.last_error,
            "attempts": self.attempts,
            "last_change": self.last_change,
            "stage": self.stage,
            "tries": self.tries,
            "max_tries": self.max_tries,
            "stage_since": self.stage_since,
            "next_check_at": self.next_check_at,
            "last_check_at": self.last_check_at,
            "last_summary": self.last_summary,
            "cert_expires_at": self.cert_expires_at,
            "hint": dict(self.hint) if self.hint else None,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DomainRow:
        hint = obj.get("hint")
        return cls(
            domain=str(obj.get("domain", "")),
            state=str(obj.get("state", "")),
            origin=str(obj.get("origin", "")),
            added_by_us=bool(obj.get("added_by_us", False)),
            place=str(obj.get("place") or ""),
            last_error=_opt_str(obj.get("last_error")),
            attempts=int(obj.get("attempts") or 0),
            last_change=_opt_float(obj.get("last_change")),
            stage=_opt_str(obj.get("stage")),
            tries=int(obj.get("tries") or 0),
            max_tries=obj["max_tries"] if isinstance(obj.get("max_tries"), int) else None,
            stage_since=_opt_float(obj.get("stage_since")),
            next_check_at=_opt_float(obj.get("next_check_at")),
            last_check_at=_opt_float(obj.get("last_check_at")),
            last_summary=str(obj.get("last_summary") or ""),
            cert_expires_at=_opt_float(obj.get("cert_expires_at")),
            hint={str(k): str(v) for k, v in hint.items()} if isinstance(hint, dict) else None,
        )

    def trouble(self, now: float) -> str | None:
        """Why the operator should look at this domain, or None when it is fine."""
        if self.stage in FAILED_STAGES:
            return f"stage {self.stage}"
        if self.state not in ("wanted", "adding", "held", "removing", "removed", "adopted"):
            return f"state {self.state}"
        if self.last_error:
            return "last call failed"
        if self.stage in CHECKING_STAGES and self.hint and self.tries >= 2:
            limit = f" of {self.max_tries}" if self.max_tries else ""
            return f"{self.stage}: try {self.tries}{limit} failed"
        if (
            self.stage in CHECKING_STAGES
            and self.stage_since is not None
            and now - self.stage_since > STUCK_AFTER_S
        ):
            return f"{self.stage} for {int((now - self.stage_since) // 60)} min"
        return None


@dataclass(frozen=True)
class EventRow:
    """An event as served: ``id`` is None for a live push (not yet in the store)."""

    id: int | None
    time: float
    level: str
    kind: str
    message: str
    domain: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "level": self.level,
            "kind": self.kind,
            "domain": self.domain,
            "message": self.message,
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EventRow:
        details = obj.get("details")
        raw_id = obj.get("id")
        return cls(
            id=raw_id if isinstance(raw_id, int) else None,
            time=_opt_float(obj.get("time")) or 0.0,
            level=str(obj.get("level", "info")),
            kind=str(obj.get("kind", "")),
            message=str(obj.get("message", "")),
            domain=_opt_str(obj.get("domain")),
            details=details if isinstance(details, dict) else {},
        )


LEVELS: Final = ("debug", "info", "warning", "error")


def event_filter_args(
    *,
    level: str | None = None,
    domain: str | None = None,
    text: str | None = None,
    since: float | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """The ``filter`` argument of the event ops (only the parts that are set)."""
    values = {"level": level, "domain": domain, "text": text, "since": since, "kind": kind}
    return {key: value for key, value in values.items() if value not in (None, "")}
