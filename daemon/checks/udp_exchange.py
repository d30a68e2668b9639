"""DNS over UDP with one socket per name server, shared by every question in flight.

A check round asks thousands of questions at once. Making, connecting and closing a socket
for each (as a general-purpose resolver does) costs more than the question itself, so each
server gets one connected UDP socket; answers are matched to their question by message id
and checked with dnspython's ``Message.is_response`` (same question, QR set), so a late,
stray or forged packet is dropped. A connected socket only receives packets from the
server's own address, and ids are random and never shared by two questions in flight.

A socket closes once it has been idle for ``IDLE_CLOSE_S``: the next round gets a new
source port, and nothing is left open between rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import cast

import dns.exception
import dns.message

IDLE_CLOSE_S = 1.0
Server = tuple[str, int]


class _Exchange(asyncio.DatagramProtocol):
    """One connected UDP socket to one server and the questions waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[dns.message.Message, asyncio.Future[dns.message.Message]]]
        self.pending = {}
        self.idle_timer: asyncio.TimerHandle | None = None

    # -- asyncio's side --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport for datagrams does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) < 2:
            return
        waiting = self.pending.get(int.from_bytes(data[:2], "big"))
        if waiting is None:
            return  # a late answer to a question already settled, or a stray packet
        query, answer = waiting
        try:
            response = dns.message.from_wire(data)
        except dns.exception.DNSException as exc:
            # The server's id, but no message we can read: that is its answer.
            if not answer.done():
                answer.set_exception(exc)
            return
        if query.is_response(response) and not answer.done():
            answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error (port unreachable, no route) is about the socket, not one question:
        # everyone waiting hears it and tries again.
        self._fail_all(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(exc or ConnectionResetError("the DNS socket was closed"))

    # -- ours --

    def _fail_all(self, exc: Exception) -> None:
        for _query, answer in self.pending.values():
            if not answer.done():
                answer.set_exception(exc)

    def close(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.transport is not None:
            self.transport.close()


class UdpExchanges:
    """The sockets of one resolver, one per server, made when first needed."""

    def __init__(self, *, idle_close_s: float = IDLE_CLOSE_S) -> None:
        self._idle_close_s = idle_close_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[Server, asyncio.Task[_Exchange]] = {}

    async def ask(
        self, query: dns.message.Message, server: Server, timeout: float
    ) -> dns.message.Message:
        """Send ``query`` to ``server`` and wait up to ``timeout`` for its answer.

        Raises TimeoutError, OSError (the server cannot be reached) or a dnspython error
        (its answer cannot be read)."""
        exchange = await self._exchange(server)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dns.message.Message] = loop.create_future()
        wire = _with_free_id(query, exchange.pending)
        exchange.pending[query.id] = (query, answer)
        if exchange.idle_timer is not None:
            exchange.idle_timer.cancel()
            exchange.idle_timer = None
        try:
            assert exchange.transport is not None
            exchange.transport.sendto(wire)
            async with asyncio.timeout(timeout):
                return await answer
        finally:
            del exchange.pending[query.id]
            if not exchange.pending:
                exchange.idle_timer = loop.call_later(
                    self._idle_close_s, self._close_idle, server, exchange
                )

    @property
    def open_count(self) -> int:
        """Sockets open now (one per server asked lately)."""
        return len(self._open)

    def close(self) -> None:
        for task in self._open.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
            else:
                task.cancel()
        self._open.clear()

    async def _exchange(self, server: Server) -> _Exchange:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: the old sockets belong to the old one
            self._open.clear()
            self._loop = loop
        task = self._open.get(server)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = loop.create_task(self._connect(server))
            self._open[server] = task
        exchange = await asyncio.shield(task)
        if exchange.transport is None or exchange.transport.is_closing():
            # Closed under us: the next question makes a new one.
            if self._open.get(server) is task:
                del self._open[server]
            raise ConnectionResetError(f"the socket to {server[0]} port {server[1]} closed")
        return exchange

    async def _connect(self, server: Server) -> _Exchange:
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_datagram_endpoint(_Exchange, remote_addr=server)
        return protocol

    def _close_idle(self, server: Server, exchange: _Exchange) -> None:
        if exchange.pending:
            return
        task = self._open.get(server)
        if task is not None and task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                if task.result() is exchange:
                    del self._open[server]
        exchange.close()


def _with_free_id(
    query: dns.message.Message,
    pending: dict[int, tuple[dns.message.Message, asyncio.Future[dns.message.Message]]],
) -> bytes:
    """The query's wire form under an id no other question in flight on this socket has."""
    while query.id in pending:
        query.id = random.SystemRandom().randrange(65536)
    return query.to_wire()
