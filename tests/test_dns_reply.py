"""``read_reply`` reads a reply as dnspython would: its own reader, where it takes a message,
gives the same records, code and flag as ``Reply.of_message`` over dnspython's reading, and
whatever it does not take dnspython reads (or refuses) instead."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from closte_sync.daemon.checks.reply import Record, Reply, _read_plain, read_reply

PLAIN_LABEL = st.text("abcXYZ019-_", min_size=1, max_size=12)
ODD_LABEL = st.sampled_from(["a.b", "sp ace", "semi;colon", "caf\u00e9", "q\\uote", "*"])
LABEL = st.integers(0, 29).flatmap(lambda n: ODD_LABEL if n == 0 else PLAIN_LABEL)
# Few names, so that owners repeat, chains form and compression points back often.
NAMES = st.lists(st.lists(LABEL, min_size=1, max_size=4), min_size=1, max_size=4)
ADDRESS_4 = st.ip_addresses(v=4).map(str)
ADDRESS_6 = st.ip_addresses(v=6).map(str)
PLAIN_KINDS = ["A", "A", "AAAA", "CNAME", "CNAME"]
KINDS = [*PLAIN_KINDS, "MX", "TXT"]


def _name(labels: list[str]) -> dns.name.Name:
    return dns.name.Name([label.encode("utf-8") for label in labels] + [b""])


@st.composite
def messages(draw: st.DrawFn) -> dns.message.Message:
    names = [_name(labels) for labels in draw(NAMES)]
    query = dns.message.make_query(names[0], draw(st.sampled_from(["A", "AAAA", "CNAME"])))
    response = dns.message.make_response(query)
    response.set_rcode(draw(st.sampled_from([0, 2, 3, 5])))
    # Half the messages keep to the plain shape but for odd labels; the rest mix in
    # whatever the quick reader leaves to dnspython.
    mixed = draw(st.booleans())
    for _ in range(draw(st.integers(0, 6))):
        owner = draw(st.sampled_from(names))
        kind = draw(st.sampled_from(KINDS if mixed else PLAIN_KINDS))
        if kind == "A":
            value = draw(ADDRESS_4)
        elif kind == "AAAA":
            value = draw(ADDRESS_6)
        elif kind == "CNAME":
            value = draw(st.sampled_from(names)).to_text()
        elif kind == "MX":
            value = f"10 {draw(st.sampled_from(names)).to_text()}"
        else:
            value = '"text"'
        # Appended as its own rrset: the wire may then hold repeats and split groups.
        if not mixed or draw(st.integers(0, 19)):
            response.answer.append(dns.rrset.from_text(owner, 60, "IN", kind, value))
        else:  # an A record of another class: dnspython keeps its data as bytes
            response.answer.append(dns.rrset.from_text(owner, 60, "CLASS9", "A", "\\# 2 abcd"))
    if mixed and draw(st.booleans()):
        response.authority.append(
            dns.rrset.from_text(names[0], 60, "IN", "NS", names[-1].to_text())
        )
    if mixed and draw(st.booleans()):
        response.use_edns(0, payload=1232)
    if mixed and draw(st.booleans()):
        response.flags |= dns.flags.TC
    return response


def _dnspython(data: bytes) -> Reply | None:
    try:
        return Reply.of_message(dns.message.from_wire(data))
    except Exception:  # any refusal: the quick reader must refuse it too
        return None


def _is_plain(message: dns.message.Message) -> bool:
    names = [rrset.name for rrset in message.answer + message.question] + [
        rdata.target for rrset in message.answer if rrset.rdtype == 5 for rdata in rrset
    ]
    return (
        not message.authority
        and message.edns < 0
        and not message.flags & dns.flags.TC
        and all(rrset.rdtype in (1, 5, 28) and rrset.rdclass == 1 for rrset in message.answer)
        and all(name.to_text() == name.to_text().encode().decode("ascii") for name in names)
        and not any(ch in name.to_text(True) for name in names for ch in "\\")
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_the_quick_reader_gives_what_dnspython_gives(message: dns.message.Message) -> None:
    data = message.to_wire()
    expected = _dnspython(data)
    assert expected is not None
    assert read_reply(data) == expected
    quick = _read_plain(data)
    if _is_plain(message):
        assert quick == expected  # the plain shape is read without dnspython
    else:
        assert quick is None or quick == expected


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_a_damaged_reply_is_taken_only_when_dnspython_reads_it_alike(
    message: dns.message.Message, data: st.DataObject
) -> None:
    wire = bytearray(message.to_wire())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(wire) - 3, len(wire)))
    damaged = bytes(wire[:cut])
    quick = _read_plain(damaged)
    if quick is not None:
        assert quick == _dnspython(damaged)
    expected = _dnspython(damaged)
    if expected is None:
        with pytest.raises(dns.exception.DNSException):
            read_reply(damaged)
    else:
        assert read_reply(damaged) == expected


def _reply(*records: dns.rrset.RRset, rcode: int = 0) -> bytes:
    query = dns.message.make_query("www.shop.example", "A")
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    response.answer.extend(records)
    return response.to_wire()


def test_a_cname_chain_reads_in_order_with_lower_case_names() -> None:
    data = _reply(
        dns.rrset.from_text("WWW.Shop.example.", 60, "IN", "CNAME", "Edge.Network.test."),
        dns.rrset.from_text("edge.network.test.", 60, "IN", "A", "127.0.0.2", "127.0.0.3"),
    )
    quick = _read_plain(data)
    assert quick is not None and (quick.rcode, quick.truncated) == (0, False)
    assert quick.answer[0] == Record("www.shop.example", 5, "edge.network.test")
    # dnspython writes the records of one set in a random order.
    assert sorted(quick.answer[1:], key=lambda r: r.value) == [
        Record("edge.network.test", 1, "127.0.0.2"),
        Record("edge.network.test", 1, "127.0.0.3"),
    ]
    assert sorted(read_reply(data).values("edge.network.test", 1)) == ["127.0.0.2", "127.0.0.3"]


def test_an_ipv4_mapped_address_reads_canonical() -> None:
    data = _reply(dns.rrset.from_text("www.shop.example.", 60, "IN", "AAAA", "::ffff:1.2.3.4"))
    assert read_reply(data).values("www.shop.example", 28) == ["::ffff:102:304"]


@example(b"\x00" * 11)
@given(st.binary(max_size=40))
def test_noise_is_refused_as_dnspython_refuses_it(noise: bytes) -> None:
    if _dnspython(noise) is None:
        with pytest.raises(dns.exception.DNSException):
            read_reply(noise)
    else:
        assert read_reply(noise) == _dnspython(noise)


def test_a_pointer_that_points_forward_is_left_to_dnspython() -> None:
    good = bytearray(_reply(dns.rrset.from_text("www.shop.example.", 60, "IN", "A", "1.2.3.4")))
    owner = len(good) - 16  # the answer's owner: a pointer to the question's name
    assert good[owner] == 0xC0
    good[owner + 1] = owner  # now it points at itself
    assert _read_plain(bytes(good)) is None
    with pytest.raises(dns.exception.DNSException):
        read_reply(bytes(good))


def test_a_servfail_reads_its_code() -> None:
    assert read_reply(_reply(rcode=dns.rcode.SERVFAIL)).rcode == dns.rcode.SERVFAIL
