"""The sandbox's TLS edge: serves each domain the certificate Closte would be showing now.

It chooses the certificate by SNI. For a name some API key holds (or one a held wildcard
alias covers), the edge shows the untrusted placeholder until ``cert_delay_s`` has passed since
the alias was added (Closte takes 5-10 minutes; the sandbox scales that down), then a valid
certificate. A name nobody holds, or holds no more, gets the placeholder. Per-name overrides
("expired", "expiring", "mismatch", "untrusted", "valid-now") win over all of that, so tests can
show any state at once. Time comes from ``SandboxState.clock``, so tests move it instead of
waiting.

After the handshake the edge answers one tiny HTTP/1.1 response naming the domain and closes,
so an ordinary HTTPS client works against it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Literal, get_args

from closte_sync.sandbox.ca import CertKind, SandboxCA
from closte_sync.sandbox.state import Alias, SandboxState
from closte_sync.shared.domains import DomainError, normalize_domain

CertMode = Literal["expired", "expiring", "mismatch", "untrusted", "valid-now"]
CERT_MODES: tuple[str, ...] = get_args(CertMode)
# The name presented when a client sends no SNI or a name that is not a domain.
NO_SNI_NAME = "sandbox.invalid"
DEFAULT_CERT_DELAY_S = 2.0
_REQUEST_TIMEOUT_S = 5.0
_MAX_REQUEST_BYTES = 16 * 1024
_PORT_TRIES = 20

_MODE_KIND: dict[CertMode, CertKind] = {
    "expired": CertKind.EXPIRED,
    "expiring": CertKind.EXPIRING,
    "mismatch": CertKind.MISMATCH,
    "untrusted": CertKind.UNTRUSTED,
    "valid-now": CertKind.VALID,
}


def parse_mode(text: str) -> CertMode | None:
    """A mode by name; "auto" (or "") clears an override. ValueError names the choices."""
    if text in ("auto", ""):
        return None
    for mode in _MODE_KIND:
        if text == mode:
            return mode
    raise ValueError(f"unknown certificate mode {text!r}; one of: auto, {', '.join(CERT_MODES)}")


class SandboxClock:
    """Real time plus an offset that tests push forward instead of waiting."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self._base = base
        self._offset = 0.0

    def __call__(self) -> float:
        return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the sandbox clock only moves forward (asked {seconds} s)")
        self._offset += seconds


class TlsEdge:
    def __init__(
        self,
        state: SandboxState,
        ca: SandboxCA,
        cert_delay_s: float = DEFAULT_CERT_DELAY_S,
    ) -> None:
        if cert_delay_s < 0:
            raise ValueError(f"cert_delay_s must be 0 or more, not {cert_delay_s}")
        self.state = state
        self.ca = ca
        self.cert_delay_s = cert_delay_s
        self._modes: dict[str, CertMode] = {}
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        # The SNI name each live connection asked for (the server side cannot read it later).
        self._asked: weakref.WeakKeyDictionary[ssl.SSLObject, str] = weakref.WeakKeyDictionary()
        self.port = 0
        self.addresses: tuple[str, ...] = ()  # where it listens, all on ``port``

    # -- what to serve ----------------------------------------------------------------------

    def set_mode(self, name: str, mode: CertMode | str | None) -> None:
        """Override what ``name`` is served; ``None`` or "auto" goes back to the held state."""
        domain = normalize_domain(name)
        chosen = parse_mode(mode) if isinstance(mode, str) else mode
        if chosen is None:
            self._modes.pop(domain, None)
        else:
            self._modes[domain] = chosen

    def modes(self) -> dict[str, CertMode]:
        return dict(self._modes)

    def choose(self, server_name: str | None) -> tuple[str, CertKind]:
        """The (certificate name, kind) the edge presents for ``server_name``."""
        try:
            domain = normalize_domain(server_name or "")
        except DomainError:
            return NO_SNI_NAME, CertKind.UNTRUSTED
        mode = self._modes.get(domain)
        alias = self._covering_alias(domain)
        cert_name = alias.domain if alias is not None and alias.wildcard else domain
        if mode is not None:
            return cert_name, _MODE_KIND[mode]
        if alias is None:
            return domain, CertKind.UNTRUSTED
        if self.state.clock() - alias.added_at < self.cert_delay_s:
            return domain, CertKind.UNTRUSTED
        return cert_name, CertKind.VALID

    def _covering_alias(self, domain: str) -> Alias | None:
        exact = self.state.find_alias(domain)
        if exact is not None:
            return exact
        # A wildcard certificate covers exactly one more label: *.a.com covers x.a.com only.
        _, dot, parent = domain.partition(".")
        if not dot or "." not in parent:
            return None
        wildcard = self.state.find_alias(f"*.{parent}")
        return wildcard if wildcard is not None and wildcard.wildcard else None

    # -- serving ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, also: Sequence[str] = ()) -> None:
        """Listen on ``host`` and, on the same port, on each address in ``also``.

        The sandbox's DNS points names at the network IP, so the edge listens there too and a
        checker connects exactly as it would to Closte: to the address DNS gave. With port 0
        the port is chosen on ``host``; when another address cannot take it, a new one is
        tried.
        """
        extra = [address for address in dict.fromkeys(also) if address != host]
        tries = _PORT_TRIES if port == 0 and extra else 1
        for attempt in range(tries):
            servers = [await self._listen(host, port)]
            chosen = servers[0].sockets[0].getsockname()[1]
            try:
                for address in extra:
                    servers.append(await self._listen(address, chosen))
            except OSError:
                for server in servers:
                    server.close()
                    await server.wait_closed()
                if attempt + 1 == tries:
                    raise
                continue
            self._servers = servers
            self.port = chosen
            self.addresses = (host, *extra)
            return

    async def _listen(self, host: str, port: int) -> asyncio.Server:
        context = self.ca.server_context(NO_SNI_NAME, CertKind.UNTRUSTED)
        context.sni_callback = self._on_sni
        return await asyncio.start_server(
            self._serve,
            host,
            port,
            ssl=context,
            ssl_handshake_timeout=_REQUEST_TIMEOUT_S,
            limit=_MAX_REQUEST_BYTES,
        )

    async def stop(self) -> None:
        if not self._servers:
            return
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers = []

    def _on_sni(
        self, ssl_object: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext
    ) -> None:
        if server_name:
            self._asked[ssl_object] = server_name
        name, kind = self.choose(server_name)
        ssl_object.context = self.ca.server_context(name, kind)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            server_name = self._asked.get(ssl_object, NO_SNI_NAME)
            # Read the request head (if the client sends one); the answer is the same anyway.
            with contextlib.suppress(TimeoutError, asyncio.LimitOverrunError):
                async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                    await reader.readuntil(b"\r\n\r\n")
            body = f"closte-sync sandbox edge: {server_name}\n".encode()
            head = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away; nothing to tell anyone
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._connections.discard(task)
