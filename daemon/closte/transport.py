"""An httpx transport that sends requests through aiohttp's connection pool.

The client keeps httpx's request/response API and its exceptions; only the wire work moves
to aiohttp. Why: at hundreds of calls a second through a dozen keep-alive connections,
httpcore's pool (over anyio) added about 10 ms to every call on our 2-core machines, while
aiohttp's connector added under 5 (bench/closte_client.py: 1.22 against 1.09 of the ideal
time in one run). aiohttp is already a dependency (the sandbox serves with it).

Errors are mapped to httpx's precisely, because the client's result kinds (and so the hint
an admin sees) depend on them: a refused or unresolvable connection is ``ConnectError``, a
connection cut mid-answer is ``ReadError``, a slow connect or answer is a timeout.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx


def proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY...) sets for ``url``, looked up once:
    aiohttp's own per-request lookup (trust_env) runs in a thread for every call."""
    parts = urlsplit(url)
    if parts.hostname is None or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, *, ssl_context: ssl.SSLContext, max_connections: int, proxy: str | None = None
    ) -> None:
        self._ssl_context = ssl_context
        self._max_connections = max_connections
        self._proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop, as aiohttp requires.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ssl=self._ssl_context, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # Closte's API is stateless
            auto_decompress=False,  # httpx decodes content-encoding itself
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            trust_env=False,  # the proxy is looked up once (proxy_for), not per request
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                proxy=self._proxy,
            )
        # aiohttp's texts for timeouts and bad answers quote the request URL, and the GET's
        # URL carries the key: each message here is built from parts that cannot hold it.
        except aiohttp.ConnectionTimeoutError as exc:
            host = f"{request.url.host}:{request.url.port or ''}"
            raise httpx.ConnectTimeout(f"connection timeout to {host}", request=request) from exc
        except TimeoutError as exc:  # aiohttp's read timeouts subclass it
            raise httpx.ReadTimeout("read timeout", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = f"cannot connect to {exc.host}:{exc.port}: {exc.os_error}"
            raise httpx.ConnectError(reason, request=request) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientResponseError as exc:  # e.g. a malformed status line
            # Its str() quotes the request URL (the GET carries the key): give the reason only.
            reason = f"{type(exc).__name__}: {exc.status} {exc.message}"
            raise httpx.RemoteProtocolError(reason, request=request) from exc
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout("read timeout", request=self._request) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=self._request) from exc

    async def aclose(self) -> None:
        self._response.release()
