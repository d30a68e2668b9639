"""The DNS responder over real loopback UDP and TCP, queried with dnspython's resolver."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from closte_sync.sandbox.dns_server import DnsServer, DnsZones, quick_answer


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    running = DnsServer(DnsZones())
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def resolver(server: DnsServer, lifetime: float = 3.0) -> dns.asyncresolver.Resolver:
    result = dns.asyncresolver.Resolver(configure=False)
    result.nameservers = ["127.0.0.1"]
    result.port = server.port
    result.timeout = lifetime
    result.lifetime = lifetime
    return result


async def addresses(
    server: DnsServer, name: str, rdtype: str = "A", tcp: bool = False
) -> list[str]:
    answer = await resolver(server).resolve(name, rdtype, tcp=tcp)
    return sorted(rdata.to_text() for rdata in answer)


TRANSPORTS = pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])


def test_udp_and_tcp_share_one_port(server: DnsServer) -> None:
    assert server.port > 0
    assert server.address == f"127.0.0.1:{server.port}"


@TRANSPORTS
async def test_a_and_aaaa_records(server: DnsServer, tcp: bool) -> None:
    server.zones.set_a("shop.example.com", ["127.0.0.2", "127.0.0.3"])
    server.zones.set_aaaa("shop.example.com", ["::1"])
    assert await addresses(server, "shop.example.com", "A", tcp) == ["127.0.0.2", "127.0.0.3"]
    assert await addresses(server, "SHOP.Example.com.", "AAAA", tcp) == ["::1"]


@TRANSPORTS
async def test_cname_chain_is_followed_to_the_address(server: DnsServer, tcp: bool) -> None:
    server.zones.set_cname("www.shop.com", "shop.com")
    server.zones.set_cname("shop.com", "network.sandbox.test")
    server.zones.set_a("network.sandbox.test", ["127.0.0.2"])
    answer = await resolver(server).resolve("www.shop.com", "A", tcp=tcp)
    assert [r.to_text() for r in answer] == ["127.0.0.2"]
    assert answer.canonical_name.to_text() == "network.sandbox.test."
    chain = [rrset for rrset in answer.response.answer if rrset.rdtype == dns.rdatatype.CNAME]
    assert [rrset.name.to_text() for rrset in chain] == ["www.shop.com.", "shop.com."]


@TRANSPORTS
async def test_cname_to_a_missing_name_is_nxdomain(server: DnsServer, tcp: bool) -> None:
    server.zones.set_cname("shop.com", "elsewhere.example")
    assert await addresses(server, "shop.com", "CNAME", tcp) == ["elsewhere.example."]
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver(server).resolve("shop.com", "A", tcp=tcp)


@TRANSPORTS
async def test_unknown_name_is_nxdomain(server: DnsServer, tcp: bool) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver(server).resolve("nothing.example.com", "A", tcp=tcp)


@TRANSPORTS
async def test_name_without_that_type_is_nodata(server: DnsServer, tcp: bool) -> None:
    server.zones.set_a("v4only.example.com", ["127.0.0.2"])
    with pytest.raises(dns.resolver.NoAnswer):
        await resolver(server).resolve("v4only.example.com", "AAAA", tcp=tcp)


@TRANSPORTS
async def test_forced_nxdomain_and_servfail(server: DnsServer, tcp: bool) -> None:
    server.zones.set_a("gone.example.com", ["127.0.0.2"])
    server.zones.set_rcode("gone.example.com", "NXDOMAIN")
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver(server).resolve("gone.example.com", "A", tcp=tcp)
    server.zones.set_rcode("broken.example.com", "SERVFAIL")
    with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
        await resolver(server).resolve("broken.example.com", "A", tcp=tcp)
    server.zones.set_rcode("gone.example.com", "NOERROR")
    assert await addresses(server, "gone.example.com", "A", tcp) == ["127.0.0.2"]


@TRANSPORTS
async def test_wildcard_answers_names_without_their_own_entry(server: DnsServer, tcp: bool) -> None:
    server.zones.set_a("*.example.org", ["127.0.0.2"])
    server.zones.set_a("own.example.org", ["127.0.0.9"])
    answer = await resolver(server).resolve("blog.example.org", "A", tcp=tcp)
    assert answer.rrset is not None
    assert answer.rrset.name.to_text() == "blog.example.org."
    assert [r.to_text() for r in answer] == ["127.0.0.2"]
    assert await addresses(server, "deep.blog.example.org", "A", tcp) == ["127.0.0.2"]
    assert await addresses(server, "own.example.org", "A", tcp) == ["127.0.0.9"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver(server).resolve("example.org", "A", tcp=tcp)


async def test_slow_name_exceeds_a_short_resolver_timeout(server: DnsServer) -> None:
    server.zones.set_a("slow.example.com", ["127.0.0.2"])
    server.zones.set_delay("slow.example.com", 3.0)
    with pytest.raises(dns.resolver.LifetimeTimeout):
        await resolver(server, lifetime=0.3).resolve("slow.example.com", "A")


async def test_short_delay_still_answers_after_it(server: DnsServer) -> None:
    server.zones.set_a("late.example.com", ["127.0.0.2"])
    server.zones.set_delay("late.example.com", 0.2)
    started = time.monotonic()
    assert await addresses(server, "late.example.com") == ["127.0.0.2"]
    assert time.monotonic() - started >= 0.2


async def test_dropped_udp_queries_are_lost_then_answered(server: DnsServer) -> None:
    server.zones.apply({"name": "lossy.example.com", "a": ["127.0.0.2"], "drop": 1})
    query = dns.message.make_query("lossy.example.com", "A")
    with pytest.raises(dns.exception.Timeout):
        await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=0.3)
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=3)
    assert [r.to_text() for r in reply.answer[0]] == ["127.0.0.2"]
    entry = server.zones.get("lossy.example.com")
    assert entry is not None and entry.drop == 0


async def test_tcp_queries_are_never_dropped(server: DnsServer) -> None:
    server.zones.set_a("lossy.example.com", ["127.0.0.2"])
    server.zones.set_drop("lossy.example.com", 5)
    assert await addresses(server, "lossy.example.com", tcp=True) == ["127.0.0.2"]


async def test_large_answer_truncates_over_udp_and_comes_whole_over_tcp(
    server: DnsServer,
) -> None:
    many = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(80)]
    server.zones.set_a("big.example.com", many)
    query = dns.message.make_query("big.example.com", "A")
    where = "127.0.0.1"
    over_udp = await dns.asyncquery.udp(query, where, port=server.port, timeout=3)
    assert over_udp.flags & dns.flags.TC
    assert over_udp.answer == []
    over_tcp = await dns.asyncquery.tcp(query, where, port=server.port, timeout=3)
    assert not over_tcp.flags & dns.flags.TC
    assert len(over_tcp.answer[0]) == len(many)
    # A resolver retries over TCP by itself when it sees TC.
    assert len(await addresses(server, "big.example.com")) == len(many)


async def test_edns_payload_lets_a_larger_udp_answer_through(server: DnsServer) -> None:
    many = [f"10.1.0.{i}" for i in range(1, 60)]
    server.zones.set_a("edns.example.com", many)
    query = dns.message.make_query("edns.example.com", "A", use_edns=0, payload=4096)
    reply = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=3)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == len(many)


async def test_garbage_gets_formerr_with_its_id(server: DnsServer) -> None:
    reply = await server.respond(b"\x12\x34not a dns message", udp=True)
    assert reply is not None
    parsed = dns.message.from_wire(reply)
    assert parsed.id == 0x1234
    assert parsed.rcode() == dns.rcode.FORMERR
    assert await server.respond(b"\x01", udp=True) is None


def test_control_spec_sets_and_deletes() -> None:
    zones = DnsZones()
    result = zones.apply({"name": "A.com", "a": ["127.0.0.2"], "delay_ms": 1500})
    assert result["name"] == "a.com"
    assert result["record"]["a"] == ["127.0.0.2"]
    assert result["record"]["delay_ms"] == 1500
    zones.apply({"name": "a.com", "cname": "network.sandbox.test"})
    entry = zones.get("a.com")
    assert entry is not None and entry.cname == "network.sandbox.test" and entry.a == []
    zones.apply({"name": "a.com", "rcode": "servfail"})
    assert zones.snapshot()["a.com"]["rcode"] == "SERVFAIL"
    assert zones.apply({"name": "a.com", "delete": True})["record"] is None
    assert zones.get("a.com") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": ["127.0.0.2"]}, "'name' is required"),
        ({"name": "a.com", "a": ["300.1.1.1"]}, "a.com: 'a' item '300.1.1.1' is not an IPv4"),
        ({"name": "a.com", "aaaa": ["127.0.0.1"]}, "is not an IPv6 address"),
        ({"name": "a.com", "rcode": "BADVERS"}, "rcode 'BADVERS' is not one of"),
        ({"name": "a.com", "delay_ms": "soon"}, "'delay_ms' must be a number"),
        ({"name": "a.com", "drop": -1}, "'drop' must be a whole number >= 0"),
        ({"name": "a.com", "drop": 1.5}, "'drop' must be a whole number >= 0"),
        ({"name": "a.com", "mx": "x"}, r"unknown field\(s\) \['mx'\]"),
        ({"name": "http://a.com"}, "looks like a URL"),
    ],
)
def test_bad_control_spec_names_the_field_and_changes_nothing(
    spec: dict[str, object], message: str
) -> None:
    zones = DnsZones()
    zones.set_a("a.com", ["127.0.0.5"])
    with pytest.raises(ValueError, match=message):
        zones.apply({**spec, "delay_ms": spec.get("delay_ms", 10)} if "name" in spec else spec)
    entry = zones.get("a.com")
    assert entry is not None and entry.a == ["127.0.0.5"] and entry.delay_s == 0


def test_cname_loop_is_servfail() -> None:
    zones = DnsZones()
    zones.set_cname("a.com", "b.com")
    zones.set_cname("b.com", "a.com")
    assert zones.answer("a.com.", dns.rdatatype.A).rcode == dns.rcode.SERVFAIL


async def test_stop_releases_the_port_and_cancels_slow_answers() -> None:
    running = DnsServer()
    await running.start()
    running.zones.set_a("slow.example.com", ["127.0.0.2"])
    running.zones.set_delay("slow.example.com", 30)
    with pytest.raises(dns.exception.Timeout):
        await resolver(running, lifetime=0.2).resolve("slow.example.com", "A")
    await running.stop()
    again = DnsServer()
    await again.start(port=running.port)
    assert again.port == running.port
    await again.stop()


def _query(name: str, rdtype: str, query_id: int, recursion: bool = True) -> bytes:
    query = dns.message.make_query(name, rdtype)
    query.id = query_id
    if not recursion:
        query.flags &= ~dns.flags.RD
    return query.to_wire()


@pytest.mark.parametrize("recursion", [True, False], ids=["rd", "no-rd"])
@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("shop.example.com", "A"),
        ("Shop.EXAMPLE.com", "A"),
        ("many.example.com", "A"),
        ("shop.example.com", "AAAA"),
        ("xn--bcher-kva.example.com", "A"),
    ],
)
async def test_the_quick_answer_is_dnspythons_answer_byte_for_byte(
    name: str, rdtype: str, recursion: bool
) -> None:
    """The common question is answered without dnspython: the same bytes."""
    zones = DnsZones()
    zones.set_a("shop.example.com", ["127.0.0.2"])
    zones.set_aaaa("shop.example.com", ["::1", "2001:db8::7"])
    zones.set_a("many.example.com", [f"10.0.0.{i}" for i in range(1, 9)])
    zones.set_a("bücher.example.com", ["127.0.0.9"])
    wire = _query(name, rdtype, 4242, recursion)
    quick = quick_answer(zones, wire)
    assert quick is not None
    slow = await DnsServer(zones).respond(wire, udp=True)
    assert slow is not None
    if name != "many.example.com" and rdtype == "A":
        assert quick == slow
    else:  # dnspython shuffles the records of a set: the same records, in any order
        assert len(quick) == len(slow) and quick[:12] == slow[:12]
        assert dns.message.from_wire(quick) == dns.message.from_wire(slow)


@pytest.mark.parametrize(
    "setup",
    [
        {"cname": "target.example.com"},  # a chain
        {"a": ["127.0.0.2"], "delay_ms": 5},  # a slow name
        {"a": ["127.0.0.2"], "drop": 1},  # a lost packet to come
        {"a": ["127.0.0.2"], "rcode": "SERVFAIL"},  # a forced answer
        {"aaaa": ["::1"]},  # no A record: NODATA
        {"a": [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(80)]},  # too big for UDP
    ],
)
def test_anything_but_the_common_question_is_left_to_dnspython(setup: dict[str, object]) -> None:
    zones = DnsZones()
    zones.set_a("target.example.com", ["127.0.0.3"])
    zones.set_a("*.wild.example.com", ["127.0.0.4"])
    zones.apply({"name": "odd.example.com", **setup})
    assert quick_answer(zones, _query("odd.example.com", "A", 7)) is None
    # Also: a wildcard match, an unknown name, another type, EDNS, a second question.
    assert quick_answer(zones, _query("x.wild.example.com", "A", 7)) is None
    assert quick_answer(zones, _query("nobody.example.com", "A", 7)) is None
    assert quick_answer(zones, _query("target.example.com", "MX", 7)) is None
    with_edns = dns.message.make_query("target.example.com", "A", use_edns=0)
    assert quick_answer(zones, with_edns.to_wire()) is None
    assert quick_answer(zones, _query("target.example.com", "A", 7)) is not None
    two = bytearray(_query("target.example.com", "A", 7))
    two[5] = 2
    assert quick_answer(zones, bytes(two)) is None
    assert quick_answer(zones, b"\x00\x07") is None
