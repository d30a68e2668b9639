"""One shared UDP socket per name server: the question is the bytes dnspython would send,
answers find their question, strays are dropped, ids never collide, and the socket closes
once idle. Against a small UDP server on loopback
whose replies each test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rrset
import pytest

from closte_sync.daemon.checks.reply import Reply
from closte_sync.daemon.checks.udp_exchange import Question, UdpExchanges

Replies = Callable[[dns.message.Message], list[bytes]]


class _Server(asyncio.DatagramProtocol):
    def __init__(self, reply: Replies) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None
        self.sources: list[tuple[str, int]] = []
        self.ids: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.sources.append(addr)
        self.ids.append(query.id)
        assert self.transport is not None
        for packet in self.reply(query):
            self.transport.sendto(packet, addr)


@asynccontextmanager
async def udp_server(reply: Replies) -> AsyncIterator[tuple[_Server, tuple[str, int]]]:
    loop = asyncio.get_running_loop()
    transport, server = await loop.create_datagram_endpoint(
        lambda: _Server(reply), local_addr=("127.0.0.1", 0)
    )
    try:
        yield server, transport.get_extra_info("sockname")[:2]
    finally:
        transport.close()


def answer(query: dns.message.Message, address: str, name: str | None = None) -> bytes:
    response = dns.message.make_response(query)
    owner = query.question[0].name if name is None else dns.name.from_text(name)
    if name is not None:  # an answer to some other question, under the same id
        response.question = [dns.rrset.RRset(owner, query.question[0].rdclass, 1)]
    response.answer.append(dns.rrset.from_text(owner, 60, "IN", "A", address))
    return response.to_wire()


def first_address(response: Reply) -> str:
    return response.answer[0].value


async def test_an_answer_to_another_question_is_dropped_and_the_real_one_taken() -> None:
    def reply(query: dns.message.Message) -> list[bytes]:
        return [
            b"\x00",  # too short to carry an id
            answer(query, "198.51.100.66", name="forged.example.com"),
            answer(query, "203.0.113.5"),
        ]

    exchanges = UdpExchanges()
    async with udp_server(reply) as (_server, address):
        question = Question.of("shop.example.com", "A")
        response = await exchanges.ask(question, address, timeout=5)
        assert first_address(response) == "203.0.113.5"
    exchanges.close()


async def test_questions_in_flight_never_share_an_id_and_each_gets_its_own_answer() -> None:
    held: list[dns.message.Message] = []

    def reply(query: dns.message.Message) -> list[bytes]:
        held.append(query)
        if len(held) < 3:
            return []  # answer all three together, once the last has arrived
        return [answer(q, f"203.0.113.{i}") for i, q in enumerate(reversed(held), 1)]

    exchanges = UdpExchanges()
    async with udp_server(reply) as (server, address):
        questions = [Question.of(f"n{i}.example.com", "A") for i in range(3)]
        responses = await asyncio.gather(*(exchanges.ask(q, address, 5) for q in questions))
        assert len(set(server.ids)) == 3
        assert len(set(server.sources)) == 1  # one socket for all three
        by_name = {r.answer[0].owner: first_address(r) for r in responses}
        assert by_name == {
            "n2.example.com": "203.0.113.1",
            "n1.example.com": "203.0.113.2",
            "n0.example.com": "203.0.113.3",
        }
    exchanges.close()


async def test_an_answer_for_another_type_or_with_the_query_bit_clear_is_dropped() -> None:
    def reply(query: dns.message.Message) -> list[bytes]:
        other_type = dns.message.make_query(query.question[0].name, "AAAA")
        other_type.id = query.id
        other_type.flags |= dns.flags.QR
        echo = query.to_wire()  # the question itself, QR clear
        return [other_type.to_wire(), echo, answer(query, "203.0.113.9")]

    exchanges = UdpExchanges()
    async with udp_server(reply) as (_server, address):
        response = await exchanges.ask(Question.of("Mixed.Example.COM", "A"), address, 5)
        assert first_address(response) == "203.0.113.9"
    exchanges.close()


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("shop.example.com", "A"),
        ("xn--bcher-kva.example", "AAAA"),
        ("_probe-1a2b.wild.example.org", "CNAME"),
        ("Upper.Example.COM.", "A"),
        ("odd\\032label.example.com", "A"),  # an escape: dnspython encodes it
        ("a" * 63 + ".example.com", "A"),
    ],
)
def test_the_question_is_the_bytes_dnspython_would_send(name: str, rdtype: str) -> None:
    reference = dns.message.make_query(name.lower(), rdtype)
    assert Question.of(name, rdtype).wire(reference.id) == reference.to_wire()


@pytest.mark.parametrize("name", ["a..example.com", "a" * 64 + ".example.com", "x." * 130])
def test_a_name_dns_cannot_carry_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"label|longer|empty"):
        Question.of(name, "A")


async def test_no_answer_is_a_timeout_and_an_idle_socket_is_replaced() -> None:
    exchanges = UdpExchanges(idle_close_s=0.05)
    async with udp_server(lambda query: []) as (_silent, silent_address):
        with pytest.raises(TimeoutError):
            await exchanges.ask(Question.of("a.example.com", "A"), silent_address, 0.1)

    async with udp_server(lambda query: [answer(query, "203.0.113.7")]) as (server, address):
        first = await exchanges.ask(Question.of("b.example.com", "A"), address, 5)
        assert first_address(first) == "203.0.113.7"
        # Idle past idle_close_s: the socket goes, and the next question comes from a new one.
        async with asyncio.timeout(5):
            while True:
                if exchanges.open_count == 0:
                    break
                await asyncio.sleep(0.01)  # polling the idle timer's effect, bounded above
        await exchanges.ask(Question.of("c.example.com", "A"), address, 5)
        assert len(server.sources) == 2 and server.sources[0] != server.sources[1]
    exchanges.close()
    assert exchanges.open_count == 0


async def test_a_closed_port_is_an_os_error() -> None:
    async with udp_server(lambda query: []) as (_server, address):
        pass  # now nothing listens there
    exchanges = UdpExchanges()
    with pytest.raises(OSError):
        await exchanges.ask(Question.of("d.example.com", "A"), address, 2)
    exchanges.close()
