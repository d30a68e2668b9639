"""The Closte API client: add, remove and list domain aliases, and test the key.

One ``httpx.AsyncClient`` per ``ClosteClient`` (keep-alive connections, explicit timeouts).
Every call is classified into a :class:`CallResult` (see ``results.py``); transient failures
are retried with exponential backoff and full jitter, honouring ``Retry-After`` as a floor.
Requests are bounded twice: a semaphore caps how many are in flight, and a token bucket
(aiolimiter's leaky bucket, a small maintained library, rather than a hand-rolled one) caps
how many start per second.

The API key goes in the form body of a POST (httpx never logs bodies); for the one GET it is
added to the query by :class:`_QueryKeyTransport`, below httpx's logging, so the request
httpx logs (``HTTP Request: GET .../getdomains``) never carries it. Results, events and
messages are scrubbed of it too, in case Closte ever echoes it back.

The wire is httpx's own transport (httpcore's connection pool), sized to ``concurrency``,
with no transport-level retries (the client retries by result kind). The proxy comes from the
environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), looked up once per client.

Each ``httpx.Request`` is built from prepared URLs and headers, and no cookies are kept:
Closte's API is stateless, and that spares httpx per-request work.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from http.cookiejar import CookieJar
from importlib import metadata
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx
from aiolimiter import AsyncLimiter

from closte_sync.daemon.closte.listing import UnreadableItemError, read_listing
from closte_sync.daemon.closte.results import (
    Answer,
    CallResult,
    ListResult,
    Operation,
    ResultKind,
    classify_response,
)
from closte_sync.daemon.events import EventSink, Level, NullSink, make_event
from closte_sync.daemon.settings import ClosteSettings
from closte_sync.shared.domains import DomainError, is_wildcard, normalize_domain
from closte_sync.shared.secret import Secret, scrub, scrub_url_keys

EVENT_KIND = "integration-closte"
FORM_TYPE = "application/x-www-form-urlencoded"
_PATHS = ("/adddomainalias", "/deletedomainalias", "/getdomains")


def _version() -> str:
    try:
        return metadata.version("closte-sync")
    except metadata.PackageNotFoundError:
        return "0"


# Closte knows the plugin's agent; ours says what we are and what we are compatible with.
USER_AGENT = f"closte-sync/{_version()} (compatible; WP-Ultimo-Closte-Integration/2.0)"

_R = TypeVar("_R", bound=CallResult)
Sleep = Callable[[float], Awaitable[None]]
Uniform = Callable[[float, float], float]


class MissingApiKeyError(ValueError):
    """The settings hold no Closte API key."""


@dataclass(frozen=True)
class ApiCall:
    """One request to Closte, without the key: method, path and form (or query) fields."""

    operation: Operation
    method: Literal["GET", "POST"]
    path: str
    fields: tuple[tuple[str, str], ...]
    domain: str | None = None

    def describe(self, base_url: str, api_key: Secret | None) -> str:
        """The request as it would go on the wire, the key masked (for --dry-run)."""
        shown_key = api_key.masked if api_key is not None else "(none)"
        url = base_url.rstrip("/") + self.path
        query = "apikey=" + shown_key
        if self.fields:
            query += "&" + urlencode(self.fields)
        if self.method == "GET":
            return f"GET {url}?{query}\nUser-Agent: {USER_AGENT}"
        return f"POST {url}\nContent-Type: {FORM_TYPE}\nUser-Agent: {USER_AGENT}\n\n{query}"


def build_call(operation: Operation, domain: str | None = None) -> ApiCall:
    """The request for ``operation``; raises DomainError for a bad name (nothing is sent)."""
    if operation == "list":
        return ApiCall("list", "GET", "/getdomains", ())
    if operation == "test":
        # The plugin's connection test: an add with no domain field at all.
        return ApiCall("test", "POST", "/adddomainalias", ())
    if domain is None:
        raise DomainError("", "empty name")
    name = normalize_domain(domain)
    path = "/adddomainalias" if operation == "add" else "/deletedomainalias"
    wildcard = "1" if is_wildcard(name) else "0"  # PHP's form encoding of the plugin's bool
    return ApiCall(operation, "POST", path, (("domain", name), ("wildcard", wildcard)), name)


def proxy_for(url: str) -> str | None:
    """The proxy the environment sets for ``url`` (HTTPS_PROXY, ALL_PROXY, NO_PROXY...).

    httpx reads the environment only when it builds its own transports; the client gives it
    one (wrapped by :class:`_QueryKeyTransport`), so it makes the same lookup here, once.
    """
    parts = urlsplit(url)
    if parts.hostname is None or proxy_bypass(parts.hostname):
        return None
    proxies = getproxies()
    found = proxies.get(parts.scheme) or proxies.get("all")
    if not found:
        return None
    return found if "://" in found else f"http://{found}"


class _QueryKeyTransport(httpx.AsyncBaseTransport):
    """Puts ``apikey`` first in a GET's query just before sending, below httpx's logging."""

    def __init__(self, inner: httpx.AsyncBaseTransport, api_key: Secret) -> None:
        self._inner = inner
        self._api_key = api_key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            key_field = urlencode({"apikey": self._api_key.reveal()})
            query = request.url.query.decode("ascii")
            url = request.url.copy_with(query=(key_field + ("&" + query if query else "")).encode())
            request = httpx.Request(
                "GET", url, headers=request.headers, extensions=request.extensions
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _NoCookies(CookieJar):
    """Closte's API is stateless: keep no cookies (and skip cookie parsing per request)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        pass

    def add_cookie_header(self, request: Any) -> None:
        pass


class ClosteClient:
    """Talks to Closte's client API. Use as ``async with ClosteClient(settings) as closte:``."""

    def __init__(
        self,
        settings: ClosteSettings,
        *,
        events: EventSink | None = None,
        burst: int | None = None,
        sleep: Sleep = asyncio.sleep,
        uniform: Uniform = random.uniform,
    ) -> None:
        if settings.api_key is None or not settings.api_key:
            raise MissingApiKeyError("no Closte API key configured ([closte] api_key)")
        if settings.concurrency < 1:
            raise ValueError(f"closte.concurrency must be at least 1, not {settings.concurrency}")
        if settings.rate_per_second <= 0:
            raise ValueError(
                f"closte.rate_per_second must be above 0, not {settings.rate_per_second}"
            )
        self._settings = settings
        self._api_key = settings.api_key
        self._events: EventSink = events if events is not None else NullSink()
        self._sleep = sleep
        self._uniform = uniform
        self._slots = asyncio.Semaphore(settings.concurrency)
        # A leaky bucket of ``burst`` drops that drains at ``rate_per_second``.
        self.burst = burst if burst is not None else settings.concurrency
        self._limiter = AsyncLimiter(self.burst, self.burst / settings.rate_per_second)
        timeout = httpx.Timeout(
            connect=min(settings.connect_timeout_s, settings.timeout_s),
            read=settings.timeout_s,
            write=settings.timeout_s,
            pool=settings.timeout_s,
        )
        wire = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=settings.concurrency,
                max_keepalive_connections=settings.concurrency,
            ),
            retries=0,
            proxy=proxy_for(settings.base_url),
        )
        self._http = httpx.AsyncClient(
            transport=_QueryKeyTransport(wire, self._api_key),
            timeout=timeout,
            cookies=httpx.Cookies(_NoCookies()),
            follow_redirects=False,
        )
        base = settings.base_url.rstrip("/")
        self._urls = {path: httpx.URL(base + path) for path in _PATHS}
        self._extensions = {"timeout": timeout.as_dict()}
        self._get_headers = httpx.Headers({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._post_headers = httpx.Headers({**self._get_headers, "Content-Type": FORM_TYPE})

    def __repr__(self) -> str:
        return f"ClosteClient(base_url={self._settings.base_url!r}, api_key={self._api_key!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the API ---------------------------------------------------------------------------

    async def add_alias(self, domain: str) -> CallResult:
        return await self._domain_call("add", domain)

    async def remove_alias(self, domain: str) -> CallResult:
        return await self._domain_call("remove", domain)

    async def test_connection(self) -> CallResult:
        """Check the key the way the plugin does; ``done`` means Closte accepted it."""
        answer, sent = await self._call(build_call("test"))
        if answer.kind is ResultKind.INVALID_DOMAIN:
            # Closte got past the key and only missed the domain: the key is good.
            answer = Answer(ResultKind.DONE, f"API key accepted (Closte said: {answer.message})")
        return self._finish(_result(answer, "test", None, sent))

    async def list_aliases(self) -> ListResult:
        """What Closte holds, in full or not at all.

        An answer with any item that cannot be read is UNREADABLE_LIST (not ok, not
        transient, no domains): acting on part of a list could remove or re-add aliases.
        """
        answer, sent = await self._call(build_call("list"))
        domains: tuple[str, ...] = ()
        if answer.kind is ResultKind.DONE:
            items = (answer.data or {}).get("domains")
            if not isinstance(items, list):
                answer = Answer(ResultKind.MALFORMED_JSON, "the answer has no 'domains' list")
            else:
                try:
                    domains = read_listing(items)
                except UnreadableItemError as exc:
                    answer = Answer(ResultKind.UNREADABLE_LIST, str(exc))
        result = ListResult(
            kind=answer.kind,
            operation="list",
            status=sent.status,
            message=answer.message,
            retry_after=answer.retry_after,
            attempts=sent.attempts,
            elapsed=sent.elapsed,
            domains=domains,
        )
        return self._finish(result)

    # -- the machinery ---------------------------------------------------------------------

    async def _domain_call(self, operation: Literal["add", "remove"], domain: str) -> CallResult:
        try:
            call = build_call(operation, domain)
        except DomainError as exc:
            return self._finish(
                CallResult(ResultKind.INVALID_DOMAIN, operation, domain, message=exc.reason)
            )
        answer, sent = await self._call(call)
        return self._finish(_result(answer, operation, call.domain, sent))

    async def _call(self, call: ApiCall) -> tuple[Answer, _Sent]:
        """Send ``call``, retrying transient failures; the last answer and how it went."""
        started = time.monotonic()
        attempts = 0
        while True:
            answer, status = await self._attempt(call)
            attempts += 1
            retries_done = attempts - 1
            if not answer.kind.is_transient or retries_done >= self._settings.retry_budget:
                break
            delay = self._backoff(retries_done, answer.retry_after)
            if delay is None:
                break
            await self._sleep(delay)
        return answer, _Sent(status, attempts, time.monotonic() - started)

    def _backoff(self, retry: int, retry_after: float | None) -> float | None:
        """Full jitter: uniform(0, min(max, base * 2^retry)), at least Retry-After.

        None when Closte asks for a longer wait than ``retry_max_s``: the caller gets the
        rate-limited result with ``retry_after`` and schedules the retry itself, instead of
        holding a slot for that long.
        """
        ceiling = min(self._settings.retry_max_s, self._settings.retry_base_s * 2**retry)
        delay = self._uniform(0.0, ceiling)
        if retry_after is not None:
            if retry_after > self._settings.retry_max_s:
                return None
            delay = max(delay, retry_after)
        return delay

    async def _attempt(self, call: ApiCall) -> tuple[Answer, int | None]:
        """One request: wait for a slot, then a token, then send within the deadline."""
        async with self._slots:
            await self._limiter.acquire()
            try:
                async with asyncio.timeout(self._settings.timeout_s):
                    response = await self._send(call)
            except (TimeoutError, httpx.TimeoutException) as exc:
                what = type(exc).__name__
                return Answer(ResultKind.TIMEOUT, f"no answer within the timeout ({what})"), None
            except httpx.TransportError as exc:
                reason = scrub(f"{type(exc).__name__}: {exc}", self._api_key)
                return Answer(ResultKind.CONNECTION_FAILED, reason), None
        answer = classify_response(
            operation=call.operation,
            domain=call.domain,
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            body=response.content.decode("utf-8", errors="replace"),
            retry_after_header=response.headers.get("retry-after"),
            now=time.time(),
        )
        return answer, response.status_code

    async def _send(self, call: ApiCall) -> httpx.Response:
        url = self._urls[call.path]
        if call.method == "GET":
            request = httpx.Request(
                "GET",
                url.copy_merge_params(call.fields) if call.fields else url,
                headers=self._get_headers,
                extensions=self._extensions,
            )
        else:
            # The key leads the form, as PHP's http_build_query puts it on the plugin's wire.
            body = urlencode((("apikey", self._api_key.reveal()), *call.fields))
            request = httpx.Request(
                "POST",
                url,
                headers=self._post_headers,
                content=body.encode(),
                extensions=self._extensions,
            )
        return await self._http.send(request)

    def _finish(self, result: _R) -> _R:
        """Scrub the result of the key (Closte might echo it) and report it as one event."""
        if result.message:
            # Any spelling of the key (raw or URL-encoded) that Closte or a library echoed.
            cleaned = scrub_url_keys(scrub(result.message, self._api_key))
            if cleaned != result.message:
                result = replace(result, message=cleaned)
        kind = result.kind
        level = (
            Level.INFO if kind.is_success else Level.WARNING if kind.is_transient else Level.ERROR
        )
        subject = f" {result.domain}" if result.domain else ""
        text = f"{result.operation}{subject}: {kind}"
        if result.message:
            text += f" ({result.message})"
        self._events.emit(
            make_event(
                level,
                EVENT_KIND,
                text,
                domain=result.domain,
                operation=result.operation,
                result=str(kind),
                status=result.status,
                attempts=result.attempts,
                elapsed=round(result.elapsed, 4),
                hint=kind.hint_id,
            )
        )
        return result


@dataclass(frozen=True)
class _Sent:
    """How a call went on the wire: the last HTTP status, requests sent, time taken."""

    status: int | None
    attempts: int
    elapsed: float


def _result(answer: Answer, operation: Operation, domain: str | None, sent: _Sent) -> CallResult:
    return CallResult(
        kind=answer.kind,
        operation=operation,
        domain=domain,
        status=sent.status,
        message=answer.message,
        retry_after=answer.retry_after,
        attempts=sent.attempts,
        elapsed=sent.elapsed,
    )
