"""One shared UDP socket per name server: answers find their question, strays are dropped,
ids never collide, and the socket closes once idle. Against a small UDP server on loopback
whose replies each test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

import dns.message
import dns.name
import dns.rrset
import pytest

from closte_sync.daemon.checks.udp_exchange import UdpExchanges

Reply = Callable[[dns.message.Message], list[bytes]]


class _Server(asyncio.DatagramProtocol):
    def __init__(self, reply: Reply) -> None:
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
async def udp_server(reply: Reply) -> AsyncIterator[tuple[_Server, tuple[str, int]]]:
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


def first_address(response: dns.message.Message) -> str:
    return str(response.answer[0][0])


async def test_an_answer_to_another_question_is_dropped_and_the_real_one_taken() -> None:
    def reply(query: dns.message.Message) -> list[bytes]:
        return [
            b"\x00",  # too short to carry an id
            answer(query, "198.51.100.66", name="forged.example.com"),
            answer(query, "203.0.113.5"),
        ]

    exchanges = UdpExchanges()
    async with udp_server(reply) as (_server, address):
        query = dns.message.make_query("shop.example.com", "A")
        response = await exchanges.ask(query, address, timeout=5)
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
        queries = [dns.message.make_query(f"n{i}.example.com", "A") for i in range(3)]
        for query in queries:
            query.id = 4242  # the same id three times: the exchange must move two of them
        responses = await asyncio.gather(*(exchanges.ask(q, address, 5) for q in queries))
        assert len(set(server.ids)) == 3
        assert len(set(server.sources)) == 1  # one socket for all three
        by_name = {str(r.question[0].name): first_address(r) for r in responses}
        assert by_name == {
            "n2.example.com.": "203.0.113.1",
            "n1.example.com.": "203.0.113.2",
            "n0.example.com.": "203.0.113.3",
        }
    exchanges.close()


async def test_no_answer_is_a_timeout_and_an_idle_socket_is_replaced() -> None:
    exchanges = UdpExchanges(idle_close_s=0.05)
    async with udp_server(lambda query: []) as (_silent, silent_address):
        with pytest.raises(TimeoutError):
            await exchanges.ask(dns.message.make_query("a.example.com", "A"), silent_address, 0.1)

    async with udp_server(lambda query: [answer(query, "203.0.113.7")]) as (server, address):
        first = await exchanges.ask(dns.message.make_query("b.example.com", "A"), address, 5)
        assert first_address(first) == "203.0.113.7"
        # Idle past idle_close_s: the socket goes, and the next question comes from a new one.
        async with asyncio.timeout(5):
            while True:
                if exchanges.open_count == 0:
                    break
                await asyncio.sleep(0.01)  # polling the idle timer's effect, bounded above
        await exchanges.ask(dns.message.make_query("c.example.com", "A"), address, 5)
        assert len(server.sources) == 2 and server.sources[0] != server.sources[1]
    exchanges.close()
    assert exchanges.open_count == 0


async def test_a_closed_port_is_an_os_error() -> None:
    async with udp_server(lambda query: []) as (_server, address):
        pass  # now nothing listens there
    exchanges = UdpExchanges()
    with pytest.raises(OSError):
        await exchanges.ask(dns.message.make_query("d.example.com", "A"), address, 2)
    exchanges.close()
