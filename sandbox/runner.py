"""The whole sandbox in one object: Closte's API, the TLS edge and DNS, sharing one state.

    async with Sandbox.running(cert_delay_s=0) as sb:
        sb.info()        # the addresses, as `closte-sync sandbox --json` prints them
        sb.dns.set_a("shop.example.com", [sb.network_ip])
        sb.tls.set_mode("shop.example.com", "expired")
        sb.clock.advance(600)   # certificates issue as if ten minutes had passed

Besides Closte's endpoints the API answers two control calls wired here:
``POST /_sandbox/dns`` (see ``DnsZones.apply``) and ``POST /_sandbox/certs``
(``{"name": ..., "mode": "expired"|"expiring"|"mismatch"|"untrusted"|"valid-now"|"auto"}``).
An empty body lists what is set. The network's own host name (``network.sandbox.test``)
resolves to ``network_ip`` from the start, so a customer's CNAME to the network works;
aliases added through the API get no DNS records of their own (DNS is the customer's job).
The TLS edge listens on ``network_ip`` as well as on ``host`` (one port, ``tls_port``), so a
check connects where the sandbox's DNS points, as it would to Closte.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

__all__ = ["Sandbox", "SandboxClock", "new_api_key"]

from closte_sync.sandbox.api import SandboxApi
from closte_sync.sandbox.ca import SandboxCA
from closte_sync.sandbox.dns_server import DnsServer, DnsZones
from closte_sync.sandbox.faults import Faults
from closte_sync.sandbox.state import SandboxState
from closte_sync.sandbox.tls_edge import DEFAULT_CERT_DELAY_S, SandboxClock, TlsEdge

DEFAULT_NETWORK_IP = "127.0.0.2"
DEFAULT_NETWORK_HOST = "network.sandbox.test"
LOOPBACK = "127.0.0.1"


def new_api_key() -> str:
    """A made-up key for the sandbox (it opens nothing outside it)."""
    return "sandbox-" + secrets.token_hex(16)


def _bindable(addresses: Iterable[str]) -> list[str]:
    """The addresses this machine can listen on without setup: loopback ones (127.0.0.0/8)."""
    return [a for a in addresses if ipaddress.ip_address(a).is_loopback]


class Sandbox:
    """A running sandbox; make one with :meth:`running`."""

    def __init__(
        self,
        *,
        state: SandboxState,
        clock: SandboxClock,
        ca: SandboxCA,
        dns: DnsZones,
        dns_server: DnsServer,
        tls: TlsEdge,
        api: SandboxApi,
        api_key: str,
        network_host: str,
    ) -> None:
        self.state = state
        self.clock = clock
        self.ca = ca
        self.dns = dns
        self.dns_server = dns_server
        self.tls = tls
        self.api = api
        self.api_key = api_key
        self.network_host = network_host

    @property
    def network_ip(self) -> str:
        return self.state.network_ip

    @property
    def ca_bundle(self) -> Path:
        return self.ca.ca_bundle

    def info(self) -> dict[str, Any]:
        """The addresses, exactly the shape DESIGN.md names for `closte-sync sandbox --json`."""
        return {
            "api": self.api.url,
            "dns": self.dns_server.address,
            "tls_port": self.tls.port,
            "ca_bundle": str(self.ca.ca_bundle),
            "network_ip": self.network_ip,
            "api_key": self.api_key,
        }

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        api_keys: Iterable[str] | None = None,
        *,
        cert_delay_s: float = DEFAULT_CERT_DELAY_S,
        network_ip: str = DEFAULT_NETWORK_IP,
        network_host: str = DEFAULT_NETWORK_HOST,
        faults: Faults | None = None,
        clock: SandboxClock | None = None,
        host: str = LOOPBACK,
        api_port: int = 0,
        dns_port: int = 0,
        tls_port: int = 0,
    ) -> AsyncIterator[Sandbox]:
        """Start everything on ``host``; stop it all (and remove the CA folder) on exit.

        ``api_keys``: the keys the API accepts; the first is ``api_key`` in ``info()``.
        None makes one up.
        """
        keys = list(api_keys) if api_keys is not None else [new_api_key()]
        if not keys or not all(keys):
            raise ValueError("api_keys: give at least one non-empty key (or None for a new one)")
        try:
            if ipaddress.ip_address(network_ip).version != 4:
                raise ValueError
        except ValueError:
            raise ValueError(f"network_ip: {network_ip!r} is not an IPv4 address") from None
        clock = clock if clock is not None else SandboxClock()
        state = SandboxState(api_keys=set(keys), network_ip=network_ip, clock=clock)
        async with contextlib.AsyncExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="closte-sbx-")))
            ca = SandboxCA(folder)
            zones = DnsZones()
            zones.set_a(network_host, [network_ip])
            dns_server = DnsServer(zones)
            tls = TlsEdge(state, ca, cert_delay_s=cert_delay_s)

            # The API answers a ValueError from these as HTTP 400 {"error": "<name>: ..."}.
            async def control_dns(body: dict[str, Any]) -> dict[str, Any]:
                if not body:
                    return {"success": True, "records": zones.snapshot()}
                return zones.apply(body)

            async def control_certs(body: dict[str, Any]) -> dict[str, Any]:
                if not body:
                    return {"success": True, "modes": dict(tls.modes())}
                name, mode = body.get("name"), body.get("mode", "auto")
                if not isinstance(name, str) or not isinstance(mode, str | None):
                    raise ValueError("give 'name' (a domain) and 'mode' (a text or null)")
                tls.set_mode(name, mode)
                served, kind = tls.choose(name)
                return {"success": True, "name": name, "serving": kind.value, "cert": served}

            api = SandboxApi(
                state,
                faults if faults is not None else Faults(),
                control={"dns": control_dns, "certs": control_certs},
            )
            await dns_server.start(host, dns_port)
            stack.push_async_callback(dns_server.stop)
            # The edge answers where the sandbox's DNS points names: the network IP too.
            await tls.start(host, tls_port, also=_bindable([network_ip]))
            stack.push_async_callback(tls.stop)
            await api.start(host, api_port)
            stack.push_async_callback(api.stop)
            yield cls(
                state=state,
                clock=clock,
                ca=ca,
                dns=zones,
                dns_server=dns_server,
                tls=tls,
                api=api,
                api_key=keys[0],
                network_host=network_host,
            )
