"""The sandbox's Closte API: the three endpoints Closte offers, plus fault knobs and a log.

Built on aiohttp's web server (already a dependency; mature, asyncio-native, and it lets a
handler abort the transport, which the "reset" fault needs). Answers follow Closte's shape:
``{"success": true, ...}`` or ``{"error": "..."}``, errors with HTTP 200 like the plugin's
connection test implies (it reads the "Invalid or empty domain" error as a good key). Where
Closte's exact answer is not documented the sandbox picks one and says so:

- unknown or missing key: HTTP 401 ``{"error": "Invalid API key"}``;
- add of a name this key holds: ``{"error": "Domain alias already exists"}``;
- add of a name another key holds: ``{"error": "Domain is already in use by another
  application"}``;
- remove of a name this key does not hold: ``{"error": "Domain alias not found"}``;
- a bad or empty domain, and a ``wildcard`` flag that disagrees with the name (``1`` without
  ``*.``, or ``*.`` with ``0``): ``{"error": "Invalid or empty domain: <domain>"}``. Being
  strict here catches a client that derives the flag wrongly.
- ``wildcard`` is read as ``1``/``true`` (wildcard) or ``0``/``false``/empty/absent (not);
  any other spelling answers ``{"error": "Invalid wildcard value: <value>"}``.

Beside them: ``GET /_sandbox/aliases``, ``GET /_sandbox/requests``, ``GET|POST
/_sandbox/faults`` and ``POST /_sandbox/<name>`` for each control handler given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aiohttp import web

from closte_sync.sandbox.faults import FaultKind, Faults, FaultsError
from closte_sync.sandbox.state import SandboxState
from closte_sync.shared.domains import DomainError, is_wildcard, normalize_domain
from closte_sync.shared.secret import mask

ControlHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Operation = Literal["add", "remove", "list"]

RESERVED_NAMES = frozenset({"aliases", "requests", "faults"})
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})
_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)

_HTML_STATUS = {FaultKind.HTML_401: 401, FaultKind.HTML_403: 403, FaultKind.HTML_404: 404}


@dataclass
class LoggedRequest:
    """One request the API received; ``start``/``end`` (state clock) show overlap."""

    start: float
    end: float
    method: str
    path: str
    fields: dict[str, str]  # form and query fields in arrival order, the key masked
    status: int  # 0 when no answer was sent (reset, or the client gave up)
    outcome: str  # "ok", "error", or the fault injected

    def to_json(self) -> dict[str, Any]:
        # "time" is the arrival time, the name DESIGN.md gives the request log's timestamp.
        return {"time": self.start, **asdict(self)}


class SandboxApi:
    def __init__(
        self,
        state: SandboxState,
        faults: Faults | None = None,
        control: Mapping[str, ControlHandler] | None = None,
    ) -> None:
        self.state = state
        self.faults = faults if faults is not None else Faults()
        self.control: dict[str, ControlHandler] = dict(control or {})
        clash = RESERVED_NAMES & set(self.control)
        if clash:
            raise ValueError(f"control handler name(s) {sorted(clash)} are reserved")
        self.log: list[LoggedRequest] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._stopping.clear()
        app = web.Application()
        for prefix in ("", "/api/client"):
            app.router.add_post(prefix + "/adddomainalias", self._add)
            app.router.add_post(prefix + "/deletedomainalias", self._remove)
            app.router.add_get(prefix + "/getdomains", self._list)
        app.router.add_get("/_sandbox/aliases", self._aliases)
        app.router.add_get("/_sandbox/requests", self._requests)
        app.router.add_get("/_sandbox/faults", self._get_faults)
        app.router.add_post("/_sandbox/faults", self._set_faults)
        app.router.add_post("/_sandbox/{name}", self._control)
        # No access log: the request line of GET /getdomains carries the key. The sandbox
        # keeps its own log, key masked. Handlers are cancelled when the client goes away.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._url = f"http://{bound_host}:{bound_port}"

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox API is not started")
        return self._url

    async def stop(self) -> None:
        self._stopping.set()  # releases requests held by the timeout fault
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- Closte's endpoints ----------------------------------------------------------------

    async def _add(self, request: web.Request) -> web.StreamResponse:
        return await self._closte(request, "add")

    async def _remove(self, request: web.Request) -> web.StreamResponse:
        return await self._closte(request, "remove")

    async def _list(self, request: web.Request) -> web.StreamResponse:
        return await self._closte(request, "list")

    async def _closte(self, request: web.Request, operation: Operation) -> web.StreamResponse:
        start = self.state.clock()
        fields = dict(request.query)
        if request.method == "POST":
            fields.update(await request.post())  # type: ignore[arg-type]
        text_fields = {k: v for k, v in fields.items() if isinstance(v, str)}
        status, outcome = 0, "cancelled"
        try:
            delay = self.faults.delay_s()
            if delay:
                await asyncio.sleep(delay)
            fault = self.faults.choose(_domain_key(text_fields.get("domain")))
            if fault is not None:
                outcome = str(fault)
                response = await self._inject(fault, request)
            else:
                status, payload = self._answer(operation, text_fields)
                outcome = "error" if "error" in payload else "ok"
                response = web.json_response(payload, status=status)
            status = response.status if fault is not FaultKind.RESET else 0
            return response
        finally:
            self._record(start, request, text_fields, status, outcome)

    def _answer(self, operation: Operation, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        key = fields.get("apikey", "")
        if not self.state.key_is_valid(key):
            return 401, {"error": "Invalid API key"}
        if operation == "list":
            return 200, {"success": True, "domains": self._listing(key)}
        raw = fields.get("domain", "")
        flag = fields.get("wildcard", "").strip().lower()
        if flag not in _TRUE | _FALSE:
            return 200, {"error": f"Invalid wildcard value: {fields['wildcard']}"}
        try:
            name = normalize_domain(raw)
        except DomainError:
            return 200, {"error": f"Invalid or empty domain: {raw}"}
        wildcard = flag in _TRUE
        if wildcard != is_wildcard(name):
            return 200, {"error": f"Invalid or empty domain: {raw}"}
        if operation == "add":
            if any(name in held for k, held in self.state.aliases.items() if k != key):
                return 200, {"error": "Domain is already in use by another application"}
            if not self.state.add_alias(key, name, wildcard):
                return 200, {"error": "Domain alias already exists"}
            return 200, {"success": True, "message": "Domain alias added"}
        if not self.state.remove_alias(key, name):
            return 200, {"error": "Domain alias not found"}
        return 200, {"success": True, "message": "Domain alias removed"}

    def _listing(self, key: str) -> list[Any]:
        held = sorted(self.state.held(key).values(), key=lambda alias: alias.domain)
        style = self.faults.list_style
        if style == "names":
            return [alias.domain for alias in held]
        if style == "flagged":
            return [
                {"domain": alias.domain.removeprefix("*."), "wildcard": int(alias.wildcard)}
                for alias in held
            ]
        if style == "garbled":
            return [{"host": alias.domain, "ssl": True} for alias in held]
        return [{"domain": alias.domain, "wildcard": alias.wildcard} for alias in held]

    async def _inject(self, fault: FaultKind, request: web.Request) -> web.StreamResponse:
        if fault is FaultKind.SERVER_ERROR:
            return web.json_response({"error": "Service temporarily unavailable"}, status=503)
        if fault is FaultKind.RATE_LIMIT:
            return web.json_response(
                {"error": "Too many requests"},
                status=429,
                headers={"Retry-After": self.faults.retry_after},
            )
        if fault is FaultKind.TIMEOUT:
            # Hold the request; the client gives up first (its handler is then cancelled).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.hold_s)
            return web.json_response({"error": "Gateway timeout"}, status=504)
        if fault is FaultKind.RESET:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        if fault is FaultKind.EMPTY:
            return web.Response(status=200, body=b"", content_type="application/json")
        if fault is FaultKind.MALFORMED:
            return web.Response(status=200, text='{"success": tru', content_type="application/json")
        if fault is FaultKind.HTML:
            return web.Response(status=502, text=_HTML_PAGE, content_type="text/html")
        if fault in _HTML_STATUS:
            status = _HTML_STATUS[fault]
            page = f"<!DOCTYPE html>\n<html><body><h1>{status}</h1></body></html>\n"
            return web.Response(status=status, text=page, content_type="text/html")
        if fault is FaultKind.NOT_FOUND_404:
            return web.json_response({"error": "Domain alias not found"}, status=404)
        if fault is FaultKind.APP_NOT_FOUND:
            return web.json_response({"error": "Application not found"})
        if fault is FaultKind.ENDPOINT_NOT_FOUND:
            return web.json_response({"error": "API endpoint not found"})
        if fault is FaultKind.REDIRECT:
            return web.Response(status=301, headers={"Location": "https://closte.invalid/"})
        return web.json_response(
            {"error": "This API key does not have permission for this action"}, status=403
        )

    def _record(
        self,
        start: float,
        request: web.Request,
        fields: dict[str, str],
        status: int,
        outcome: str,
    ) -> None:
        self.state.record(request.method, request.path, fields, status, outcome)
        shown = {k: (mask(v) if k == "apikey" else v) for k, v in fields.items()}
        self.log.append(
            LoggedRequest(
                start, self.state.clock(), request.method, request.path, shown, status, outcome
            )
        )

    # -- the sandbox's own endpoints -------------------------------------------------------

    async def _aliases(self, request: web.Request) -> web.Response:
        held = {
            mask(key): [
                {"domain": a.domain, "wildcard": a.wildcard, "added_at": a.added_at}
                for a in sorted(aliases.values(), key=lambda alias: alias.domain)
            ]
            for key, aliases in self.state.aliases.items()
        }
        return web.json_response({"aliases": held})

    async def _requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": [entry.to_json() for entry in self.log]})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.to_json())

    async def _set_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            self.faults.update(body)
        except FaultsError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.faults.to_json())

    async def _control(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        handler = self.control.get(name)
        if handler is None:
            return web.json_response({"error": f"no sandbox endpoint {name!r}"}, status=404)
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            result = await handler(body)
        except ValueError as exc:
            return web.json_response({"error": f"{name}: {exc}"}, status=400)
        return web.json_response(result)


def _domain_key(raw: str | None) -> str | None:
    """The name a per-domain fault is keyed on: normalised when it can be."""
    if raw is None:
        return None
    try:
        return normalize_domain(raw)
    except DomainError:
        return raw


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
    if not isinstance(data, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    return data
