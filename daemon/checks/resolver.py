"""Asking DNS one question, with the outcome sorted into what a stage check needs to know.

The asking is ours, and so is reading the plainest answers (``reply``); dnspython reads the
rest. Every question in flight to one name server shares one connected UDP socket, its
answers matched back by message id and question (``udp_exchange``), instead of a socket
made and torn down per question: a round of 10,000 checks is 10,000 packets, not 10,000
sockets. A lost packet is sent again
after ``attempt_timeout_s``, to the next server when there are several; a truncated answer
is asked again over TCP; a server that answers SERVFAIL or REFUSED is not asked that
question again; a resolver that refuses the connection is tried again with a short backoff
until the deadline.

The outcome is a ``Lookup``: the response when one came (its answer section holds the CNAME
chain), or why none did, split between answers about the domain (NXDOMAIN, SERVFAIL) and
failures of our own side (no resolver reachable, no answer before the deadline).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.resolver

from closte_sync.daemon.checks.reply import Reply
from closte_sync.daemon.checks.udp_exchange import Question, UdpExchanges
from closte_sync.daemon.settings import ChecksSettings

LookupStatus = Literal[
    "ok",  # NOERROR (the answer may still be empty)
    "nxdomain",
    "servfail",
    "refused",
    "chain-too-long",  # the CNAME chain loops or is too long to follow (set by the check)
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
    response: Reply | None = None
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
        self.attempt_timeout_s = attempt_timeout_s
        self.config_error: str | None = None
        self._servers = [parse_nameserver(text) for text in nameservers]
        if not self._servers:
            try:
                system = dns.resolver.Resolver(configure=True)
            except (dns.resolver.NoResolverConfiguration, OSError) as exc:
                self.config_error = f"no system name server: {exc}"
            else:
                self._servers = [(str(ns), 53) for ns in system.nameservers]
        if not self._servers and self.config_error is None:
            self.config_error = "no system name server: /etc/resolv.conf names none"
        self._exchanges = UdpExchanges()

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

    def close(self) -> None:
        """Close the sockets now (they also close by themselves once idle)."""
        self._exchanges.close()

    async def lookup(self, name: str, rdtype: str, deadline: float) -> Lookup:
        """Ask for ``rdtype`` records of ``name``; never raises for DNS trouble."""
        if self.config_error is not None:
            return Lookup(name, rdtype, "unreachable", error=self.config_error, attempts=0)
        try:
            question = Question.of(name, rdtype)
        except ValueError as exc:
            return Lookup(name, rdtype, "error", error=str(exc), attempts=0)
        loop = asyncio.get_running_loop()
        backoff = _BACKOFF_START_S
        attempts = 0
        servers = list(self._servers)
        # What each server said, when it said something other than a final answer.
        said: dict[tuple[str, int], Lookup] = {}
        while True:
            for server in servers:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return _give_up(name, rdtype, said, attempts)
                attempts += 1
                outcome = await self._ask(question, server, name, rdtype, remaining)
                if outcome.status in ("ok", "nxdomain"):
                    return _with_attempts(outcome, attempts)
                said[server] = outcome
            # A server that answered SERVFAIL, REFUSED or nonsense is not asked again.
            servers = [s for s in servers if said[s].status in ("unreachable", "timeout")]
            if not servers:
                return _give_up(name, rdtype, said, attempts)
            if all(said[s].status == "unreachable" for s in servers):
                # Nobody took the packet (port closed, no route): try again shortly.
                await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0)))
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _ask(
        self,
        question: Question,
        server: tuple[str, int],
        name: str,
        rdtype: str,
        remaining: float,
    ) -> Lookup:
        """One try at one server."""
        try:
            response = await self._exchanges.ask(
                question, server, min(self.attempt_timeout_s, remaining)
            )
            if response.truncated:  # too long for UDP: ask again over TCP
                query = dns.message.make_query(question.name, question.rdtype)
                whole = await dns.asyncquery.tcp(
                    query, server[0], timeout=remaining, port=server[1]
                )
                response = Reply.of_message(whole)
        except TimeoutError:
            return Lookup(name, rdtype, "timeout", error=f"no answer from {_show(server)}")
        except dns.exception.Timeout:
            return Lookup(name, rdtype, "timeout", error=f"no answer from {_show(server)}")
        except (OSError, EOFError) as exc:
            return Lookup(name, rdtype, "unreachable", error=f"{_show(server)}: {exc}")
        except dns.exception.DNSException as exc:
            text = str(exc) or type(exc).__name__
            return Lookup(name, rdtype, "error", error=f"{_show(server)}: {text}")
        rcode = response.rcode
        status = _RCODES.get(rcode)
        if status is None:
            text = f"{_show(server)} answered {dns.rcode.to_text(dns.rcode.Rcode.make(rcode))}"
            return Lookup(name, rdtype, "error", response, text)
        return Lookup(name, rdtype, status, response)


_RCODES: dict[int, LookupStatus] = {
    dns.rcode.NOERROR: "ok",
    dns.rcode.NXDOMAIN: "nxdomain",
    dns.rcode.SERVFAIL: "servfail",
    dns.rcode.REFUSED: "refused",
}


def _show(server: tuple[str, int]) -> str:
    address, port = server
    shown = f"[{address}]" if ":" in address else address
    return shown if port == 53 else f"{shown}:{port}"


def _with_attempts(lookup: Lookup, attempts: int) -> Lookup:
    return Lookup(
        lookup.name, lookup.rdtype, lookup.status, lookup.response, lookup.error, attempts
    )


def _give_up(name: str, rdtype: str, said: dict[tuple[str, int], Lookup], attempts: int) -> Lookup:
    """No final answer: the outcome that says most about the domain wins."""
    for status in _PRECEDENCE:
        for lookup in said.values():
            if lookup.status == status:
                return _with_attempts(lookup, attempts)
    for lookup in said.values():
        return _with_attempts(lookup, attempts)  # timeouts only
    return Lookup(name, rdtype, "timeout", error="deadline passed", attempts=attempts)
