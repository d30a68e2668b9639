"""Asking DNS one question, with the outcome sorted into what a stage check needs to know.

Built on dnspython's async resolver. Lost packets are retried by dnspython within the
deadline (``attempt_timeout_s`` per try); a resolver that refuses the connection is tried
again with a short backoff until the deadline. The outcome is a ``Lookup``: the response
when one came (its answer section holds the CNAME chain), or why none did, split between
answers about the domain (NXDOMAIN, SERVFAIL, a CNAME chain too long) and failures of our
own side (no resolver reachable, no answer before the deadline).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver

from closte_sync.daemon.settings import ChecksSettings

LookupStatus = Literal[
    "ok",  # NOERROR (the answer may still be empty)
    "nxdomain",
    "servfail",
    "refused",
    "chain-too-long",  # the response's CNAME chain loops or is too long to follow
    "unreachable",  # no resolver could be reached (our side)
    "timeout",  # no answer before the deadline (our side, or lost packets all along)
    "error",  # the resolver answered something unusable (our side)
]
INCONCLUSIVE: frozenset[LookupStatus] = frozenset({"unreachable", "timeout", "error"})
DEFAULT_ATTEMPT_TIMEOUT_S = 2.0
DEFAULT_DEADLINE_S = 10.0
# When servers disagree, the answer that says most about the domain wins.
_PRECEDENCE: tuple[LookupStatus, ...] = (
    "chain-too-long",
    "servfail",
    "refused",
    "error",
    "unreachable",
)
_BACKOFF_START_S = 0.1
_BACKOFF_MAX_S = 1.0


class NameserverError(ValueError):
    """A ``[checks] nameservers`` entry that is not an address; the message names it."""


def parse_nameserver(text: str) -> tuple[str, int]:
    """``"1.1.1.1"``, ``"127.0.0.1:5353"``, ``"::1"`` or ``"[::1]:5353"`` as (address, port)."""
    host, port_text = text.strip(), ""
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif host.count(":") == 1:
        host, port_text = host.split(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise NameserverError(
            f"[checks] nameservers: {text!r} is not a name server address "
            "(like 1.1.1.1 or 127.0.0.1:5353)"
        ) from None
    if not port_text:
        return address, 53
    if not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise NameserverError(f"[checks] nameservers: {text!r} has a bad port")
    return address, int(port_text)


@dataclass(frozen=True)
class Lookup:
    name: str
    rdtype: str  # "A", "AAAA", "CNAME"
    status: LookupStatus
    response: dns.message.Message | None = None
    error: str | None = None
    attempts: int = 1

    @property
    def inconclusive(self) -> bool:
        return self.status in INCONCLUSIVE


class DnsResolver:
    """A stub resolver: the configured name servers, or the system's (/etc/resolv.conf)."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        attempt_timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S,
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:
        if attempt_timeout_s <= 0 or deadline_s <= 0:
            raise ValueError("attempt_timeout_s and deadline_s must be more than 0")
        self.deadline_s = deadline_s
        self.config_error: str | None = None
        self._servers = [parse_nameserver(text) for text in nameservers]
        resolver = dns.asyncresolver.Resolver(configure=False)
        if self._servers:
            resolver.nameservers = [dns.nameserver.Do53Nameserver(a, p) for a, p in self._servers]
        else:
            try:
                system = dns.asyncresolver.Resolver(configure=True)
            except (dns.resolver.NoResolverConfiguration, OSError) as exc:
                self.config_error = f"no system name server: {exc}"
            else:
                resolver.nameservers = list(system.nameservers)
                self._servers = [(str(ns), 53) for ns in system.nameservers]
        resolver.timeout = attempt_timeout_s
        resolver.cache = None  # every check must see the records as they are now
        resolver.retry_servfail = False
        self._resolver = resolver

    @classmethod
    def from_settings(cls, settings: ChecksSettings, **options: float) -> DnsResolver:
        return cls(settings.nameservers, **options)

    def describe(self) -> str:
        """Which servers are asked, for summaries and details."""
        if self.config_error is not None:
            return "none"
        return ", ".join(f"{a}:{p}" if p != 53 else a for a, p in self._servers) or "none"

    def deadline(self, seconds: float | None = None) -> float:
        """An absolute deadline on the running loop's clock."""
        span = self.deadline_s if seconds is None else seconds
        return asyncio.get_running_loop().time() + span

    async def lookup(self, name: str, rdtype: str, deadline: float) -> Lookup:
        """Ask for ``rdtype`` records of ``name``; never raises for DNS trouble."""
        if self.config_error is not None:
            return Lookup(name, rdtype, "unreachable", error=self.config_error, attempts=0)
        qname = dns.name.from_text(name)
        loop = asyncio.get_running_loop()
        backoff = _BACKOFF_START_S
        attempts = 0
        last: Lookup | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                if last is not None:
                    return Lookup(name, rdtype, last.status, last.response, last.error, attempts)
                return Lookup(name, rdtype, "timeout", error="deadline passed", attempts=attempts)
            attempts += 1
            last = await self._once(qname, name, rdtype, remaining)
            if last.status != "unreachable":
                return Lookup(name, rdtype, last.status, last.response, last.error, attempts)
            # Nobody took the packet (port closed, no route): try again shortly.
            await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0)))
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _once(self, qname: dns.name.Name, name: str, rdtype: str, lifetime: float) -> Lookup:
        try:
            answer = await self._resolver.resolve(
                qname, rdtype, raise_on_no_answer=False, lifetime=lifetime, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            responses: dict[dns.name.Name, dns.message.Message] = exc.responses()  # type: ignore[no-untyped-call]
            return Lookup(name, rdtype, "nxdomain", responses.get(qname))
        except dns.resolver.NoNameservers as exc:
            return _classify(name, rdtype, exc)
        except dns.exception.Timeout as exc:  # LifetimeTimeout included
            return Lookup(name, rdtype, "timeout", error=str(exc))
        except dns.exception.DNSException as exc:
            return Lookup(name, rdtype, "error", error=str(exc) or type(exc).__name__)
        return Lookup(name, rdtype, "ok", answer.response)


def _classify(name: str, rdtype: str, exc: dns.resolver.NoNameservers) -> Lookup:
    """Every server failed: say whether they answered about the domain or not at all."""
    errors = exc.kwargs.get("errors") or []
    found: dict[LookupStatus, Lookup] = {}
    for _server, _tcp, _port, error, response in errors:
        if isinstance(error, dns.message.ChainTooLong):
            found.setdefault("chain-too-long", Lookup(name, rdtype, "chain-too-long", response))
        elif response is not None and response.rcode() == dns.rcode.SERVFAIL:
            found.setdefault("servfail", Lookup(name, rdtype, "servfail", response))
        elif response is not None and response.rcode() == dns.rcode.REFUSED:
            found.setdefault("refused", Lookup(name, rdtype, "refused", response))
        elif isinstance(error, OSError | EOFError | dns.exception.Timeout):
            found.setdefault("unreachable", Lookup(name, rdtype, "unreachable", error=str(error)))
        else:
            text = str(error) if error is not None else "unusable answer"
            found.setdefault("error", Lookup(name, rdtype, "error", response, text))
    for status in _PRECEDENCE:
        if status in found:
            return found[status]
    return Lookup(name, rdtype, "unreachable", error=str(exc))
