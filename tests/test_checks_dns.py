"""The DNS stage check against the sandbox's DNS responder over real UDP/TCP sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import pytest
from checks_fixtures import assert_known_hint, discover, dns_checker, sandbox_settings

from closte_sync.daemon.checks import DnsChecker, NetworkTarget
from closte_sync.daemon.checks.probe import PROBE_PREFIX
from closte_sync.daemon.checks.resolver import DnsResolver, NameserverError, parse_nameserver
from closte_sync.daemon.settings import ChecksSettings, WordPressFacts
from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]


async def test_a_record_at_the_network_ip_passes(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("shop.example.com", [closte_sandbox.network_ip])
    result = await (await dns_checker(closte_sandbox)).check("shop.example.com")
    assert result.ok and not result.inconclusive
    assert result.kind == "dns" and result.domain == "shop.example.com"
    assert result.addresses == ("127.0.0.2",)
    assert result.hint_id is None and result.advice is None
    assert "127.0.0.2" in result.summary
    json.dumps(result.to_json())  # the details are JSON-able


async def test_a_record_elsewhere_fails_naming_both_addresses(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("shop.example.com", ["127.0.0.9"])
    result = await (await dns_checker(closte_sandbox)).check("shop.example.com")
    assert not result.ok and not result.inconclusive
    assert result.hint_id == "dns-not-pointing"
    assert result.addresses == ("127.0.0.9",)
    assert result.summary == (
        "shop.example.com resolves to 127.0.0.9, expected 127.0.0.2 "
        "(or a CNAME to network.sandbox.test)"
    )
    assert result.advice is not None
    assert "resolves to 127.0.0.9, expected 127.0.0.2" in result.advice
    assert "create an A record for shop.example.com pointing at 127.0.0.2" in result.advice
    assert result.details["answers"] == {"A": ["127.0.0.9"], "AAAA": []}


async def test_cname_to_the_network_host_passes(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_cname("www.shop.com", "shop.com")
    closte_sandbox.dns.set_cname("shop.com", closte_sandbox.network_host)
    result = await (await dns_checker(closte_sandbox)).check("www.shop.com")
    assert result.ok, result.summary
    assert result.details["cname_chain"] == ["shop.com", "network.sandbox.test"]
    assert "a CNAME to network.sandbox.test" in result.summary
    assert result.addresses == ("127.0.0.2",)


async def test_cname_chain_elsewhere_names_the_chain(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_cname("shop.com", "cdn.other.net")
    closte_sandbox.dns.set_a("cdn.other.net", ["127.0.0.7"])
    result = await (await dns_checker(closte_sandbox)).check("shop.com")
    assert not result.ok and result.hint_id == "dns-not-pointing"
    assert result.advice is not None
    assert "shop.com -> cdn.other.net resolves to 127.0.0.7, expected 127.0.0.2" in result.advice


async def test_cname_loop_is_named(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_cname("a.loop.com", "b.loop.com")
    closte_sandbox.dns.set_cname("b.loop.com", "a.loop.com")
    result = await (await dns_checker(closte_sandbox)).check("a.loop.com")
    assert not result.ok and not result.inconclusive
    assert result.hint_id == "dns-cname-loop"
    assert "a.loop.com -> b.loop.com -> a.loop.com" in result.summary
    assert result.advice is not None and "never reach an address" in result.advice


async def test_nxdomain(closte_sandbox: Sandbox) -> None:
    result = await (await dns_checker(closte_sandbox)).check("missing.example.com")
    assert not result.ok and not result.inconclusive
    assert result.hint_id == "dns-nxdomain"
    assert result.summary.startswith("missing.example.com does not exist (NXDOMAIN)")
    assert result.advice is not None and "pointing at 127.0.0.2" in result.advice


async def test_cname_to_a_missing_name_is_nxdomain_naming_the_target(
    closte_sandbox: Sandbox,
) -> None:
    closte_sandbox.dns.set_cname("shop.com", "typo.example.net")
    result = await (await dns_checker(closte_sandbox)).check("shop.com")
    assert result.hint_id == "dns-nxdomain"
    assert result.advice is not None
    assert "shop.com is a CNAME to typo.example.net" in result.advice


async def test_servfail(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_rcode("broken.example.com", "SERVFAIL")
    result = await (await dns_checker(closte_sandbox)).check("broken.example.com")
    assert not result.ok and not result.inconclusive
    assert result.hint_id == "dns-servfail"
    assert "SERVFAIL" in result.summary and "broken.example.com" in result.summary


async def test_slow_answer_within_the_deadline_passes(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("slow.example.com", [closte_sandbox.network_ip])
    closte_sandbox.dns.set_delay("slow.example.com", 0.3)
    result = await (await dns_checker(closte_sandbox)).check("slow.example.com")
    assert result.ok, result.summary


async def test_lost_first_packets_are_asked_again(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("lossy.example.com", [closte_sandbox.network_ip])
    closte_sandbox.dns.set_drop("lossy.example.com", 2)  # the first A and AAAA questions
    checker = await dns_checker(closte_sandbox, deadline_s=10.0, attempt_timeout_s=0.2)
    result = await checker.check("lossy.example.com")
    assert result.ok, result.summary
    entry = closte_sandbox.dns.get("lossy.example.com")
    assert entry is not None and entry.drop == 0  # both packets really were lost


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A UDP port on 127.0.0.1 where nothing listens (ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port that takes every packet and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        yield hole.getsockname()[1]


@pytest.mark.parametrize("where", ["closed_port", "silent_port"])
async def test_unreachable_resolver_is_inconclusive(
    where: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(where)
    settings = ChecksSettings(nameservers=(f"127.0.0.1:{port}",), network_ips=("127.0.0.2",))
    target = NetworkTarget(ips=frozenset({"127.0.0.2"}))
    checker = DnsChecker(settings, target, deadline_s=0.6, attempt_timeout_s=0.2)
    result = await checker.check("shop.example.com")
    assert result.inconclusive and not result.ok
    assert result.hint_id == "dns-unreachable"
    assert f"127.0.0.1:{port}" in (result.advice or "")


async def test_wildcard_is_checked_through_a_random_label(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("*.example.net", [closte_sandbox.network_ip])
    checker = await dns_checker(closte_sandbox)
    first = await checker.check("*.example.net")
    second = await checker.check("*.example.net")
    assert first.ok and second.ok
    assert first.domain == "*.example.net"
    assert first.asked is not None and first.asked.startswith(PROBE_PREFIX)
    assert first.asked.endswith(".example.net") and first.asked.count(".") == 2
    assert first.asked != second.asked
    assert first.details["asked"] == first.asked


async def test_wildcard_without_a_wildcard_record_fails_with_wildcard_advice(
    closte_sandbox: Sandbox,
) -> None:
    closte_sandbox.dns.set_a("example.net", [closte_sandbox.network_ip])  # the apex only
    result = await (await dns_checker(closte_sandbox)).check("*.example.net")
    assert result.hint_id == "dns-nxdomain"
    assert result.advice is not None
    assert "create a wildcard A record for *.example.net" in result.advice


async def test_aaaa_only_domain(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_aaaa("v6.example.com", ["::2"])
    closte_sandbox.dns.set_aaaa("v6bad.example.com", ["0:0::9"])
    settings = sandbox_settings(closte_sandbox, network_ips=("127.0.0.2", "0::2"))
    checker = DnsChecker(settings, await discover(settings), deadline_s=5.0)
    good = await checker.check("v6.example.com")
    assert good.ok and good.addresses == ("::2",)
    bad = await checker.check("v6bad.example.com")
    assert bad.hint_id == "dns-not-pointing"
    assert bad.summary.startswith("v6bad.example.com resolves to ::9, expected 127.0.0.2 or ::2")


async def test_unicode_and_bad_names(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("xn--bcher-kva.example", [closte_sandbox.network_ip])
    checker = await dns_checker(closte_sandbox)
    assert (await checker.check("Bücher.example")).ok
    bad = await checker.check("https://shop.example.com/")
    assert not bad.ok and bad.hint_id == "domain-invalid"


async def test_discover_collects_ips_hosts_and_problems(closte_sandbox: Sandbox) -> None:
    closte_sandbox.dns.set_a("main.network.test", ["127.0.0.5"])
    settings = sandbox_settings(
        closte_sandbox,
        network_ips=("127.0.0.2", "not-an-ip"),
        network_hosts=("network.sandbox.test", "gone.network.test"),
    )
    target = await discover(settings, WordPressFacts(domain_current_site="main.network.test"))
    assert target.ips == {"127.0.0.2", "127.0.0.5"}
    assert target.hosts == {"network.sandbox.test", "gone.network.test", "main.network.test"}
    assert target.sources["127.0.0.5"] == "A/AAAA of main.network.test"
    assert target.sources["main.network.test"] == "DOMAIN_CURRENT_SITE"
    assert any("network_ips[1]: 'not-an-ip'" in p for p in target.problems)
    assert any("gone.network.test: no address (A nxdomain" in p for p in target.problems)

    # DOMAIN_CURRENT_SITE's address makes a domain pointing there correct.
    closte_sandbox.dns.set_a("shop.example.com", ["127.0.0.5"])
    assert (await DnsChecker(settings, target, deadline_s=5).check("shop.example.com")).ok


async def test_discover_never_raises_when_nothing_answers(silent_port: int) -> None:
    settings = ChecksSettings(
        nameservers=(f"127.0.0.1:{silent_port}",), network_hosts=("network.example.com",)
    )
    resolver = DnsResolver.from_settings(settings, deadline_s=0.5, attempt_timeout_s=0.2)
    target = await NetworkTarget.discover(settings, WordPressFacts(), resolver)
    assert target.ips == frozenset() and target.hosts == {"network.example.com"}
    assert any("network.example.com: no address" in p for p in target.problems)


async def test_no_target_is_inconclusive(closte_sandbox: Sandbox) -> None:
    settings = sandbox_settings(closte_sandbox, network_ips=(), network_hosts=())
    target = await discover(settings)
    assert target.empty and "no network address known" in target.problems[-1]
    result = await DnsChecker(settings, target).check("shop.example.com")
    assert result.inconclusive and result.hint_id == "dns-no-target"


async def test_every_failure_names_a_catalogued_hint(closte_sandbox: Sandbox) -> None:
    dns = closte_sandbox.dns
    dns.set_a("elsewhere.example.com", ["127.0.0.9"])
    dns.set_rcode("servfail.example.com", "SERVFAIL")
    dns.set_rcode("refused.example.com", "REFUSED")
    dns.set_cname("loop1.example.com", "loop2.example.com")
    dns.set_cname("loop2.example.com", "loop1.example.com")
    checker = await dns_checker(closte_sandbox)
    names = ["elsewhere", "servfail", "refused", "loop1", "nothing"]
    results = await asyncio.gather(*(checker.check(f"{n}.example.com") for n in names))
    for result in results:
        assert not result.ok
        assert_known_hint(result.hint_id)
        assert result.advice and result.summary
    assert results[2].hint_id == "dns-refused"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1.1.1", ("1.1.1.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_nameserver_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dns.example.com", "'dns.example.com' is not a name server address"),
        ("127.0.0.1:0", "'127.0.0.1:0' has a bad port"),
        ("127.0.0.1:x", "'127.0.0.1:x' has a bad port"),
    ],
)
def test_bad_nameserver_is_refused_naming_the_setting(text: str, message: str) -> None:
    with pytest.raises(NameserverError, match=rf"\[checks\] nameservers: {message}"):
        DnsChecker(ChecksSettings(nameservers=(text,)), NetworkTarget())
