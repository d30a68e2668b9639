"""What a Closte API call came to: a small set of result kinds and a typed result.

Closte answers ``{"success": true, ...}`` or ``{"error": "..."}``; its error wording is not
documented, so messages are classified by robust substring matching, never by one exact
string. The wording closte-sync expects (and the sandbox speaks) is:

- ``{"error": "Domain alias already exists"}``: an add of a name this application holds
  (a success: the alias is there);
- ``{"error": "Domain alias not found"}``: a remove of a name it does not hold (a success);
- ``{"error": "Domain is already in use by another application"}``: the name is taken;
- ``{"error": "Invalid or empty domain: <domain>"}``: a malformed or missing name;
- HTTP 401 ``{"error": "Invalid API key"}``: the key is wrong (auth failure); a message
  about permissions (HTTP 403) means the key is valid but not allowed (permission failure).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Literal

from closte_sync.shared.hints import Hint, get_hint

Operation = Literal["add", "remove", "list", "test"]


class ResultKind(StrEnum):
    DONE = "done"
    ALREADY_PRESENT = "already-present"
    ALREADY_ABSENT = "already-absent"
    INVALID_DOMAIN = "invalid-domain"
    DOMAIN_TAKEN = "domain-taken"
    AUTH_FAILED = "auth-failed"
    PERMISSION_DENIED = "permission-denied"
    REJECTED = "rejected"  # an error message we do not recognise
    HTTP_ERROR = "http-error"  # another 4xx status
    RATE_LIMITED = "rate-limited"
    SERVER_ERROR = "server-error"
    TIMEOUT = "timeout"
    CONNECTION_FAILED = "connection-failed"
    MALFORMED_JSON = "malformed-json"
    EMPTY_BODY = "empty-body"
    HTML_PAGE = "html-page"

    @property
    def is_success(self) -> bool:
        return self in _SUCCESSES

    @property
    def is_transient(self) -> bool:
        """Worth trying again later: the same request may well succeed."""
        return self in _TRANSIENT

    @property
    def hint_id(self) -> str | None:
        return _HINT_IDS.get(self)


_SUCCESSES = frozenset({ResultKind.DONE, ResultKind.ALREADY_PRESENT, ResultKind.ALREADY_ABSENT})
_TRANSIENT = frozenset(
    {
        ResultKind.RATE_LIMITED,
        ResultKind.SERVER_ERROR,
        ResultKind.TIMEOUT,
        ResultKind.CONNECTION_FAILED,
        ResultKind.EMPTY_BODY,
        ResultKind.HTML_PAGE,
    }
)
_HINT_IDS: dict[ResultKind, str] = {
    ResultKind.INVALID_DOMAIN: "domain-invalid",
    ResultKind.DOMAIN_TAKEN: "closte-domain-taken",
    ResultKind.AUTH_FAILED: "closte-api-key",
    ResultKind.PERMISSION_DENIED: "closte-permissions",
    ResultKind.REJECTED: "closte-rejected",
    ResultKind.HTTP_ERROR: "closte-rejected",
    ResultKind.RATE_LIMITED: "closte-rate-limited",
    ResultKind.SERVER_ERROR: "closte-down",
    ResultKind.TIMEOUT: "closte-timeout",
    ResultKind.CONNECTION_FAILED: "network-unreachable",
    ResultKind.MALFORMED_JSON: "closte-malformed-answer",
    ResultKind.EMPTY_BODY: "closte-malformed-answer",
    ResultKind.HTML_PAGE: "closte-html-page",
}


@dataclass(frozen=True)
class CallResult:
    """One call's outcome, after retries. Never holds the API key."""

    kind: ResultKind
    operation: Operation
    domain: str | None = None
    status: int | None = None  # HTTP status of the last attempt, None when none came
    message: str | None = None  # Closte's message (or what went wrong on the way)
    retry_after: float | None = None  # seconds Closte asked us to wait
    attempts: int = 0  # requests sent (0: refused before sending)
    elapsed: float = 0.0  # seconds, retries and waits included

    @property
    def ok(self) -> bool:
        return self.kind.is_success

    @property
    def hint(self) -> Hint | None:
        hint_id = self.kind.hint_id
        return None if hint_id is None else get_hint(hint_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "kind": str(self.kind),
            "ok": self.ok,
            "domain": self.domain,
            "status": self.status,
            "message": self.message,
            "retry_after": self.retry_after,
            "attempts": self.attempts,
            "elapsed": round(self.elapsed, 4),
        }


@dataclass(frozen=True)
class ListResult(CallResult):
    """The aliases Closte holds (ASCII names), when ``ok``."""

    domains: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()  # items the answer held that are not domain names

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["domains"] = list(self.domains)
        data["unreadable"] = list(self.unreadable)
        return data


@dataclass(frozen=True)
class Answer:
    """One HTTP answer classified: the kind, Closte's message, and the JSON when it was read."""

    kind: ResultKind
    message: str | None = None
    retry_after: float | None = None
    data: dict[str, Any] | None = None


# Message wording, matched case-insensitively as substrings (Closte's exact words may vary).
_INVALID_DOMAIN = re.compile(r"\b(invalid|empty|malformed|bad|missing)\b[^.:]*\bdomain")
_TAKEN_WORDS = ("another application", "another app", "other application", "in use", "used by")
_ABSENT_WORDS = ("not found", "not exist", "doesn't exist", "no such", "unknown domain")
_PERMISSION_WORDS = ("permission", "not allowed", "not permitted", "insufficient", "privilege")
_AUTH_WORDS = (
    "api key",
    "apikey",
    "api_key",
    "unauthori",
    "authenticat",
    "forbidden",
    "access denied",
    "invalid key",
    "wrong key",
    "token",
)


def classify_message(message: str, operation: Operation, domain: str | None) -> ResultKind:
    """The kind an ``{"error": message}`` answer means for this operation."""
    text = message.lower()
    if domain:
        # The name itself may contain any of the words below ("apikey.com").
        text = text.replace(domain.lower(), " ")
    # Key and permission words first: "Invalid API key for domain ..." is about the key.
    if any(word in text for word in _PERMISSION_WORDS):
        return ResultKind.PERMISSION_DENIED
    if any(word in text for word in _AUTH_WORDS):
        return ResultKind.AUTH_FAILED
    if _INVALID_DOMAIN.search(text):
        return ResultKind.INVALID_DOMAIN
    if "already" in text or "exists" in text:
        if any(word in text for word in _TAKEN_WORDS):
            return ResultKind.DOMAIN_TAKEN
        if operation == "remove" and any(w in text for w in ("removed", "deleted", "gone")):
            return ResultKind.ALREADY_ABSENT
        if operation == "add":
            return ResultKind.ALREADY_PRESENT
    if operation == "remove" and any(word in text for word in _ABSENT_WORDS):
        return ResultKind.ALREADY_ABSENT
    if any(word in text for word in _TAKEN_WORDS):
        return ResultKind.DOMAIN_TAKEN
    return ResultKind.REJECTED


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def looks_like_html(content_type: str, body: str) -> bool:
    if "html" in content_type.lower():
        return True
    start = body.lstrip()[:15].lower()
    return start.startswith(("<!doctype", "<html", "<head", "<body"))


def _by_status(status: int) -> ResultKind:
    if status == 401:
        return ResultKind.AUTH_FAILED
    if status == 403:
        return ResultKind.PERMISSION_DENIED
    return ResultKind.HTTP_ERROR


def classify_response(
    *,
    operation: Operation,
    domain: str | None,
    status: int,
    content_type: str,
    body: str,
    retry_after_header: str | None,
    now: float,
) -> Answer:
    """Classify one HTTP answer. Order matters: status first where it decides alone."""
    if status == 429:
        return Answer(
            ResultKind.RATE_LIMITED,
            _error_text(body) or "too many requests",
            parse_retry_after(retry_after_header, now),
        )
    if looks_like_html(content_type, body):
        return Answer(ResultKind.HTML_PAGE, f"an HTML page (HTTP {status}), not Closte's JSON")
    if status >= 500:
        return Answer(ResultKind.SERVER_ERROR, _error_text(body) or f"HTTP {status}")
    if not body.strip():
        if status >= 400:
            return Answer(_by_status(status), f"HTTP {status} with an empty body")
        return Answer(ResultKind.EMPTY_BODY, "the answer was empty")
    data = _json_object(body)
    if data is None:
        if status >= 400:
            return Answer(_by_status(status), f"HTTP {status}: {_snippet(body)}")
        return Answer(ResultKind.MALFORMED_JSON, f"not JSON: {_snippet(body)}")
    error = data.get("error")
    if error is not None and not data.get("success"):
        message = str(error)
        kind = classify_message(message, operation, domain)
        if kind is ResultKind.REJECTED and status >= 400:
            kind = _by_status(status)
        return Answer(kind, message, data=data)
    if status >= 400:
        return Answer(_by_status(status), f"HTTP {status}", data=data)
    if data.get("success") is True or data.get("success") in (1, "1", "true"):
        note = data.get("message")
        return Answer(ResultKind.DONE, str(note) if note is not None else None, data=data)
    return Answer(ResultKind.MALFORMED_JSON, f"neither success nor error: {_snippet(body)}")


def _json_object(body: str) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_text(body: str) -> str | None:
    data = _json_object(body) if body.strip() else None
    if data is not None and data.get("error") is not None:
        return str(data["error"])
    return None


def _snippet(body: str, limit: int = 80) -> str:
    text = " ".join(body.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
