"""What "pointing at the network" means: the network's addresses and host names.

The plugin counts a domain's DNS as correct when its A/CNAME data holds the network's public
IP or the network's main domain. Here the IPs are ``[checks] network_ips`` plus the A/AAAA
addresses of ``[checks] network_hosts`` and of wp-config.php's DOMAIN_CURRENT_SITE; the host
names are those names themselves (a CNAME through any of them is correct).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field

import dns.rdatatype

from closte_sync.daemon.checks.resolver import DnsResolver, Lookup
from closte_sync.daemon.settings import ChecksSettings, WordPressFacts
from closte_sync.shared.domains import DomainError, normalize_domain


def normalize_ip(text: str) -> str:
    """The canonical text of an IP address (ValueError when it is not one)."""
    return str(ipaddress.ip_address(text.strip()))


@dataclass(frozen=True)
class NetworkTarget:
    ips: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()  # what discovery could not find out, one line each
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # ip/host -> origin

    @property
    def empty(self) -> bool:
        return not self.ips and not self.hosts

    def describe(self) -> str:
        """The expected answer in words: "127.0.0.2 (or a CNAME to network.example.com)"."""
        ips = " or ".join(sorted(self.ips)) or "(no network IP known)"
        if not self.hosts:
            return ips
        return f"{ips} (or a CNAME to {' or '.join(sorted(self.hosts))})"

    def to_json(self) -> dict[str, list[str]]:
        return {
            "ips": sorted(self.ips),
            "hosts": sorted(self.hosts),
            "problems": list(self.problems),
        }

    @classmethod
    async def discover(
        cls, settings: ChecksSettings, wordpress: WordPressFacts, resolver: DnsResolver
    ) -> NetworkTarget:
        """Collect the target; never raises: what failed is listed in ``problems``."""
        ips: set[str] = set()
        hosts: set[str] = set()
        problems: list[str] = []
        sources: dict[str, str] = {}
        for index, text in enumerate(settings.network_ips):
            try:
                ip = normalize_ip(text)
            except ValueError:
                problems.append(f"[checks] network_ips[{index}]: {text!r} is not an IP address")
                continue
            ips.add(ip)
            sources.setdefault(ip, "[checks] network_ips")
        named: list[tuple[str, str]] = [
            (h, "[checks] network_hosts") for h in settings.network_hosts
        ]
        if wordpress.domain_current_site:
            named.append((wordpress.domain_current_site, "DOMAIN_CURRENT_SITE"))
        for text, origin in named:
            try:
                host = normalize_domain(text)
            except DomainError as exc:
                problems.append(f"{origin}: {exc}")
                continue
            hosts.add(host)
            sources.setdefault(host, origin)
        deadline = resolver.deadline()
        found = await asyncio.gather(*(_addresses(resolver, h, deadline) for h in sorted(hosts)))
        for host, (addresses, problem) in zip(sorted(hosts), found, strict=True):
            for ip in addresses:
                ips.add(ip)
                sources.setdefault(ip, f"A/AAAA of {host}")
            if problem:
                problems.append(problem)
        if not ips and not hosts:
            problems.append(
                "no network address known: set [checks] network_ips (the Closte server's IP) "
                "or network_hosts"
            )
        return cls(frozenset(ips), frozenset(hosts), tuple(problems), sources)


async def _addresses(resolver: DnsResolver, host: str, deadline: float) -> tuple[list[str], str]:
    """The host's A and AAAA addresses, and a line saying what failed (or "")."""
    lookups = await asyncio.gather(
        resolver.lookup(host, "A", deadline), resolver.lookup(host, "AAAA", deadline)
    )
    addresses = [ip for lookup in lookups for ip in _final_addresses(lookup)]
    if addresses:
        return addresses, ""
    statuses = sorted({lookup.status for lookup in lookups})
    reasons = ", ".join(
        f"{lookup.rdtype} {lookup.status}" + (f" ({lookup.error})" if lookup.error else "")
        for lookup in lookups
    )
    if statuses == ["ok"]:
        reasons = "no A or AAAA record"
    return [], f"network host {host}: no address ({reasons})"


def _final_addresses(lookup: Lookup) -> list[str]:
    if lookup.response is None:
        return []
    wanted = dns.rdatatype.from_text(lookup.rdtype)
    return [r.value for r in lookup.response.answer if r.rdtype == wanted]
