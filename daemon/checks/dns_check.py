"""The DNS stage check: does the domain point at the network, as the plugin asks?

Correct (as in the plugin) when the domain's A/AAAA answer holds one of the network's IPs,
or its CNAME chain passes through one of the network's host names. The chain is followed
through the answers the resolver gives and, where it stops at a CNAME target with no data,
by asking for that target in turn (bounded, loops detected). A wildcard is checked through a
random name under it, as any visitor's name would be.

Failures say what came back against what was expected and what record to create; when our
own resolver could not be asked at all the result is ``inconclusive`` and counts no try.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from closte_sync.daemon.checks.probe import probe_name
from closte_sync.daemon.checks.reply import AAAA, CNAME, A, Reply
from closte_sync.daemon.checks.resolver import DnsResolver, Lookup, LookupStatus
from closte_sync.daemon.checks.results import CheckResult
from closte_sync.daemon.checks.target import NetworkTarget
from closte_sync.daemon.settings import ChecksSettings
from closte_sync.shared.domains import DomainError, normalize_domain

MAX_CHAIN = 16  # CNAME hops followed before giving up (resolvers use about as many)
_DEFAULT_ATTEMPT_TIMEOUT_S = 2.0
# Answers about the domain itself, most telling first.
_DOMAIN_FAILURES: tuple[LookupStatus, ...] = ("chain-too-long", "nxdomain", "servfail", "refused")
_PROPAGATION = "DNS changes can take a while to reach every resolver"


@dataclass
class _Walk:
    """What following the name found."""

    chain: list[str]  # the asked name, then each CNAME target in order
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    status: LookupStatus | None = None  # the failing status, None when records came back
    loop: bool = False
    too_long: bool = False
    error: str | None = None
    queries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return self.a + self.aaaa


def chain_in(response: Reply | None, start: str) -> tuple[list[str], bool]:
    """The CNAME targets the answer section leads through from ``start``, and whether it loops."""
    if response is None:
        return [], False
    targets = {r.owner: r.value for r in response.answer if r.rdtype == CNAME}
    names: list[str] = []
    seen = {start}
    current = start
    while current in targets and len(names) < MAX_CHAIN:
        current = targets[current]
        names.append(current)
        if current in seen:
            return names, True
        seen.add(current)
    return names, False


def records_of(response: Reply | None, owner: str, rdtype: str) -> list[str]:
    """The addresses (canonical text) of type ``rdtype`` the answer gives for ``owner``."""
    if response is None:
        return []
    return response.values(owner, AAAA if rdtype == "AAAA" else A)


def arrow(chain: list[str]) -> str:
    return " -> ".join(chain)


class DnsChecker:
    def __init__(
        self,
        settings: ChecksSettings,
        target: NetworkTarget,
        *,
        deadline_s: float = 10.0,
        attempt_timeout_s: float | None = None,
        resolver: DnsResolver | None = None,
    ) -> None:
        """``attempt_timeout_s``: how long one UDP try waits before it is sent again
        (default: 2 s, or a third of the deadline when that is shorter)."""
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be more than 0, not {deadline_s}")
        self.target = target
        self.deadline_s = deadline_s
        if resolver is None:
            per_try = attempt_timeout_s or min(_DEFAULT_ATTEMPT_TIMEOUT_S, deadline_s / 3)
            resolver = DnsResolver(
                settings.nameservers, attempt_timeout_s=per_try, deadline_s=deadline_s
            )
        self.resolver = resolver

    async def check(self, domain: str) -> CheckResult:
        try:
            name = normalize_domain(domain)
        except DomainError as exc:
            return CheckResult.not_a_domain("dns", domain, exc)
        asked = probe_name(name)
        base: dict[str, Any] = {
            "asked": asked,
            "resolver": self.resolver.describe(),
            "expected": self.target.to_json(),
        }
        if self.target.empty:
            return CheckResult(
                "dns",
                name,
                False,
                "no network address known to compare the answer with",
                "dns-no-target",
                "set [checks] network_ips to the Closte server's IP address (Closte dashboard: "
                "Sites > Info) or [checks] network_hosts; see `closte-sync doctor`",
                base,
                inconclusive=True,
                asked=asked,
            )
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        walk = await self._walk(asked, deadline)
        details = {
            **base,
            "cname_chain": walk.chain[1:],
            "answers": {"A": walk.a, "AAAA": walk.aaaa},
            "status": walk.status or "ok",
            "queries": walk.queries,
        }
        if walk.error:
            details["error"] = walk.error
        return _judge(name, asked, walk, self.target, details)

    async def _walk(self, asked: str, deadline: float) -> _Walk:
        walk = _Walk(chain=[asked])
        current = asked
        while True:
            a = await self.resolver.lookup(current, "A", deadline)
            walk.queries.append(_query_json(a))
            if self._follow(walk, current, a.response):
                return walk
            walk.a = records_of(a.response, walk.chain[-1], "A")
            if self._settled(walk):
                # As the plugin: one network address (or host) in the answer is enough, so
                # AAAA is asked only when A does not settle it, or to explain a failure.
                return walk
            aaaa = await self.resolver.lookup(current, "AAAA", deadline)
            walk.queries.append(_query_json(aaaa))
            if a.response is None and self._follow(walk, current, aaaa.response):
                return walk
            final = walk.chain[-1]
            walk.a = records_of(a.response, final, "A")
            walk.aaaa = records_of(aaaa.response, final, "AAAA")
            if walk.addresses:
                return walk
            status = _worst(a, aaaa)
            if status is not None:
                walk.status = status
                walk.error = a.error or aaaa.error
                if status in ("servfail", "chain-too-long"):
                    await self._explain_failure(walk, deadline)
                return walk
            if final == current:
                walk.status = "ok"  # the name exists but has no address records
                return walk
            if len(walk.chain) > MAX_CHAIN:
                walk.too_long, walk.status = True, "chain-too-long"
                return walk
            current = final  # the resolver stopped at a CNAME target: ask for it ourselves

    @staticmethod
    def _follow(walk: _Walk, current: str, response: Reply | None) -> bool:
        """Add the CNAME targets the answer leads through to the chain; True when it loops
        (the walk is then over)."""
        names, looped = chain_in(response, current)
        for target in names:
            if target in walk.chain:
                looped = True
            walk.chain.append(target)
            if looped:
                break
        if looped:
            walk.loop, walk.status = True, "chain-too-long"
        return looped

    def _settled(self, walk: _Walk) -> bool:
        return any(host in self.target.hosts for host in walk.chain) or any(
            ip in self.target.ips for ip in walk.addresses
        )

    async def _explain_failure(self, walk: _Walk, deadline: float) -> None:
        """After a SERVFAIL, follow the CNAME records one by one to see if they loop."""
        current = walk.chain[-1]
        while len(walk.chain) <= MAX_CHAIN:
            lookup = await self.resolver.lookup(current, "CNAME", deadline)
            walk.queries.append(_query_json(lookup))
            names, _ = chain_in(lookup.response, current)
            if lookup.status != "ok" or not names:
                return
            current = names[0]
            looped = current in walk.chain
            walk.chain.append(current)
            if looped:
                walk.loop, walk.status = True, "chain-too-long"
                return
        walk.too_long, walk.status = True, "chain-too-long"


def _worst(a: Lookup, aaaa: Lookup) -> LookupStatus | None:
    """The status that explains an empty answer; None when both answered NOERROR."""
    statuses = {a.status, aaaa.status}
    for status in _DOMAIN_FAILURES:
        if status in statuses:
            return status
    for lookup in (a, aaaa):
        if lookup.inconclusive:
            return lookup.status
    return None


def _query_json(lookup: Lookup) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": lookup.name,
        "type": lookup.rdtype,
        "status": lookup.status,
        "attempts": lookup.attempts,
    }
    if lookup.error:
        result["error"] = lookup.error
    return result


def _judge(
    name: str, asked: str, walk: _Walk, target: NetworkTarget, details: dict[str, Any]
) -> CheckResult:
    addresses = tuple(walk.addresses)
    expected = target.describe()
    via = f" (via {arrow(walk.chain)})" if len(walk.chain) > 1 else ""
    through = [host for host in walk.chain if host in target.hosts]
    matched = [ip for ip in addresses if ip in target.ips]

    def result(
        ok: bool, summary: str, hint: str | None, advice: str | None, **kw: Any
    ) -> CheckResult:
        return CheckResult(
            "dns",
            name,
            ok,
            summary,
            hint,
            advice,
            details,
            addresses=addresses,
            asked=asked,
            **kw,
        )

    if through or matched:
        why = f"a CNAME to {through[0]}" if through else f"{', '.join(matched)}"
        shown = ", ".join(addresses) or "(no address yet)"
        return result(
            True, f"{asked} points at the network: {why}; answers {shown}{via}", None, None
        )
    fix = _fix(name, target)
    status = walk.status
    if addresses:
        shown = ", ".join(addresses)
        if len(walk.chain) > 1:
            advice = (
                f"{arrow(walk.chain)} resolves to {shown}, expected {expected}: "
                f"point the CNAME of {name} at the network instead; {fix}"
            )
        else:
            advice = f"{asked} resolves to {shown}, expected {expected}: {fix}"
        return result(
            False,
            f"{asked} resolves to {shown}{via}, expected {expected}",
            "dns-not-pointing",
            f"{advice}. {_PROPAGATION}.",
        )
    if walk.loop or walk.too_long:
        what = "loops" if walk.loop else f"is longer than {MAX_CHAIN} steps"
        return result(
            False,
            f"the CNAME chain of {asked} {what}: {arrow(walk.chain)}",
            "dns-cname-loop",
            f"the CNAME records {arrow(walk.chain)} never reach an address: point one of them "
            f"at the network instead; {fix}.",
        )
    if status == "nxdomain":
        if len(walk.chain) > 1:
            return result(
                False,
                f"{arrow(walk.chain)}: {walk.chain[-1]} does not exist (NXDOMAIN), "
                f"expected {expected}",
                "dns-nxdomain",
                f"{name} is a CNAME to {walk.chain[1]}, which leads to {walk.chain[-1]}, a name "
                f"that does not exist: fix the CNAME target; {fix}.",
            )
        return result(
            False,
            f"{asked} does not exist (NXDOMAIN), expected {expected}",
            "dns-nxdomain",
            f"{asked} has no DNS records at all (check the spelling, and that the domain is "
            f"registered and its name servers are set): {fix}. {_PROPAGATION}.",
        )
    if status == "servfail":
        return result(
            False,
            f"the resolver answered SERVFAIL for {walk.chain[-1]}{via}, expected {expected}",
            "dns-servfail",
            f"the DNS servers of {name} are failing or misconfigured (broken delegation, DNSSEC "
            f"errors): check the domain at its DNS provider and registrar; {fix}.",
        )
    if status == "refused":
        return result(
            False,
            f"the resolver refused to answer for {walk.chain[-1]}{via}",
            "dns-refused",
            f"the name server refused the question for {name}: check the domain's name "
            f"servers at its registrar, and [checks] nameservers if set; {fix}.",
        )
    if status in ("unreachable", "timeout", "error"):
        reason = walk.error or status
        return result(
            False,
            f"could not ask DNS about {asked}: {reason}",
            "dns-unreachable",
            f"no answer from the resolver ({details['resolver']}) before the deadline: "
            "check the server's network and [checks] nameservers; the domain is checked "
            "again later and no try is counted.",
            inconclusive=True,
        )
    return result(
        False,
        f"{walk.chain[-1]}{via} has no A or AAAA record, expected {expected}",
        "dns-no-address",
        f"{walk.chain[-1]} exists but has no address: {fix}. {_PROPAGATION}.",
    )


def _fix(name: str, target: NetworkTarget) -> str:
    """What record to create, in words: "create an A record for x.com pointing at 1.2.3.4"."""
    wildcard = "wildcard " if name.startswith("*.") else ""
    parts = []
    if target.ips:
        kinds = {"AAAA" if ":" in ip else "A" for ip in target.ips}
        kind = "A/AAAA" if len(kinds) == 2 else kinds.pop()
        article = "an" if kind.startswith("A") and not wildcard else "a"
        ips = " or ".join(sorted(target.ips))
        parts.append(f"create {article} {wildcard}{kind} record for {name} pointing at {ips}")
    if target.hosts:
        hosts = " or ".join(sorted(target.hosts))
        parts.append(f"{'or ' if parts else 'create '}a CNAME for {name} to {hosts}")
    return ", ".join(parts) + " at the domain's DNS provider"
