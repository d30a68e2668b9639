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

"Not found" is "already gone" only when it is about the domain (it names the domain, or its
subject is the domain or alias). A 404, whatever its body, means the URL is wrong (the
endpoint, so ``closte.base_url``), and "Application not found" means the key's application:
neither says anything about the domain.

Every kind falls in exactly one of four groups, which tell a caller what to do next:

- successes (``is_success``): the alias is where it should be;
- transient (``is_transient``): the same request may well succeed later; retry with backoff;
- refusals (``is_refusal``): final for this domain until something changes (the name, or who
  holds it): INVALID_DOMAIN, DOMAIN_TAKEN, REJECTED. Other domains are unaffected;
- account-wide (``is_account_wide``): the key, its rights, the URL or Closte's answers are
  wrong (AUTH_FAILED, PERMISSION_DENIED, ENDPOINT_NOT_FOUND, HTTP_ERROR, MALFORMED_JSON,
  UNREADABLE_LIST). They say nothing about the domain; every other call would fail alike.
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
    HTTP_ERROR = "http-error"  # another 3xx/4xx status
    ENDPOINT_NOT_FOUND = "endpoint-not-found"  # HTTP 404: the URL is wrong, not the domain
    RATE_LIMITED = "rate-limited"
    SERVER_ERROR = "server-error"
    TIMEOUT = "timeout"
    CONNECTION_FAILED = "connection-failed"
    MALFORMED_JSON = "malformed-json"
    EMPTY_BODY = "empty-body"
    HTML_PAGE = "html-page"  # an HTML page with a 2xx or 5xx status (a proxy, maintenance)
    UNREADABLE_LIST = "unreadable-list"  # getdomains items of a shape we cannot read

    @property
    def is_success(self) -> bool:
        return self in _SUCCESSES

    @property
    def is_transient(self) -> bool:
        """Worth trying again later: the same request may well succeed."""
        return self in _TRANSIENT

    @property
    def is_refusal(self) -> bool:
        """Final for this domain until something changes; other domains are unaffected."""
        return self in _REFUSALS

    @property
    def is_account_wide(self) -> bool:
        """About the key, its rights, the URL or the answers: nothing about the domain."""
        return self in _ACCOUNT_WIDE

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
_REFUSALS = frozenset({ResultKind.INVALID_DOMAIN, ResultKind.DOMAIN_TAKEN, ResultKind.REJECTED})
_ACCOUNT_WIDE = frozenset(
    {
        ResultKind.AUTH_FAILED,
        ResultKind.PERMISSION_DENIED,
        ResultKind.ENDPOINT_NOT_FOUND,
        ResultKind.HTTP_ERROR,
        ResultKind.MALFORMED_JSON,
        ResultKind.UNREADABLE_LIST,
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
    ResultKind.ENDPOINT_NOT_FOUND: "closte-html-page",  # its action: check base_url, proxy
    ResultKind.UNREADABLE_LIST: "closte-malformed-answer",
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
    def refused(self) -> bool:
        """Closte refused this domain (an add or remove): hold it until something changes."""
        return self.kind.is_refusal and self.operation in ("add", "remove")

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
    """The aliases Closte holds (ASCII names, wildcards as ``*.name``).

    All or nothing: ``domains`` is the complete list when ``ok``, and empty otherwise. An
    answer with any item that cannot be read is UNREADABLE_LIST, its message naming the item.
    """

    domains: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["domains"] = list(self.domains)
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
_ABSENT_WORDS = (
    "not found",
    "not exist",
    "doesn't exist",
    "no such",
    "unknown domain",
    "already removed",
    "already deleted",
    "already gone",
)
# What a "not found" is about: the first of these subjects the message names.
_SUBJECT = re.compile(
    r"\b(?:(?P<domain>domain|alias)|(?P<endpoint>endpoint|route|url|path|page|method)"
    r"|(?P<application>application|app|account|project))(?:es|s)?\b"
)
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
    names_domain = domain is not None and domain != "" and domain.lower() in text
    if domain:
        # The name itself may contain any of the words below ("apikey.com").
        text = text.replace(domain.lower(), " ")
    absent = any(word in text for word in _ABSENT_WORDS)
    subject = _subject(text, names_domain)
    if absent and subject == "endpoint":
        return ResultKind.ENDPOINT_NOT_FOUND  # "API endpoint not found": the URL is wrong
    if absent and subject == "application":
        return ResultKind.AUTH_FAILED  # "Application not found": the key's application
    # Key and permission words first: "Invalid API key for domain ..." is about the key.
    if any(word in text for word in _PERMISSION_WORDS):
        return ResultKind.PERMISSION_DENIED
    if any(word in text for word in _AUTH_WORDS):
        return ResultKind.AUTH_FAILED
    if _INVALID_DOMAIN.search(text):
        return ResultKind.INVALID_DOMAIN
    if any(word in text for word in _TAKEN_WORDS):
        return ResultKind.DOMAIN_TAKEN
    if absent:
        # Only a "not found" about the domain (it names it, or the domain or alias is the
        # subject) is "already gone"; a bare "Not found" could be anything.
        if operation == "remove" and subject == "domain":
            return ResultKind.ALREADY_ABSENT
        return ResultKind.REJECTED
    if ("already" in text or "exists" in text) and operation == "add":
        return ResultKind.ALREADY_PRESENT
    return ResultKind.REJECTED


def _subject(text: str, names_domain: bool) -> str | None:
    """What the message is about: the first subject word, else the domain if it names it."""
    found = _SUBJECT.search(text)
    if found is not None:
        return found.lastgroup
    return "domain" if names_domain else None


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
    if status == 404:
        return ResultKind.ENDPOINT_NOT_FOUND
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
    if status == 404:
        # Whatever the body says (even "Domain alias not found"): the URL names no endpoint.
        return Answer(ResultKind.ENDPOINT_NOT_FOUND, f"HTTP 404: {_endpoint_hint(body)}")
    if 300 <= status < 500:
        # The client follows no redirects: one means base_url is not Closte's API URL.
        if status < 400:
            return Answer(ResultKind.HTTP_ERROR, f"HTTP {status}: a redirect; check base_url")
        if looks_like_html(content_type, body):
            return Answer(_by_status(status), f"an HTML page (HTTP {status}), not Closte's JSON")
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


def _endpoint_hint(body: str) -> str:
    said = _error_text(body)
    what = f"Closte said {said!r}" if said else "no such endpoint"
    return f"{what}; check [closte] base_url"


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
