"""DNS over UDP with one socket per name server, shared by every question in flight.

A check round asks thousands of questions at once. Making, connecting and closing a socket
for each (as a general-purpose resolver does) costs more than the question itself, so each
server gets one connected UDP socket. A connected socket only receives packets from the
server's own address; ids are random and never shared by two questions in flight; an
answer is taken only when its id, QR flag, opcode and question section match the question
byte for byte (names compared without case), so a late, stray or forged packet is dropped
before it is parsed.

The question's wire form is written here (``Question``): a 12-byte header and the name's
labels (RFC 1035 4.1.1-4.1.2). dnspython's ``make_query().to_wire()`` made the same bytes
at a cost, per question, close to that of reading the answer, and a round asks 10,000;
``tests/test_udp_exchange.py`` holds the two to the same bytes. Answers are read by
``reply.read_reply`` (dnspython for all but the plainest).

A socket closes once it has been idle for ``IDLE_CLOSE_S``: the next round gets a new
source port, and nothing is left open between rounds.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import struct
from dataclasses import dataclass
from typing import cast

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype

from closte_sync.daemon.checks.reply import Reply, read_reply

IDLE_CLOSE_S = 1.0
Server = tuple[str, int]
_HEADER = struct.Struct("!HHHHHH")  # id, flags, counts of question/answer/authority/extra
_RD = 0x0100  # recursion desired, as every stub resolver asks
_QR = 0x80  # in the third byte: this is a response
_OPCODE = 0x78  # in the third byte: 0 is QUERY
_PLAIN_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.*")
_IDS_AT_ONCE = 4096  # message ids drawn from the OS at a time: one read, not one per question


@dataclass(frozen=True)
class Question:
    """One question (name, type, class IN) and its wire form, all but the id."""

    name: str
    rdtype: dns.rdatatype.RdataType
    section: bytes  # the question section: the name's labels, type, class

    @classmethod
    def of(cls, name: str, rdtype: str) -> Question:
        """Raises ValueError for a name DNS cannot carry."""
        kind = dns.rdatatype.RdataType.make(rdtype)
        text = name.lower().rstrip(".")
        if text and set(text) <= _PLAIN_NAME:
            labels = [label.encode("ascii") for label in text.split(".")]
            if not all(0 < len(label) < 64 for label in labels):
                raise ValueError(f"{name!r}: a label is empty or longer than 63 characters")
            wire = b"".join(bytes((len(label),)) + label for label in labels) + b"\0"
            if len(wire) > 255:
                raise ValueError(f"{name!r} is longer than 255 bytes")
        else:  # escapes, other bytes: dnspython knows every rule
            try:
                encoded = dns.name.from_text(name).to_wire()
            except dns.exception.DNSException as exc:
                raise ValueError(f"{name!r}: {exc}") from None
            assert encoded is not None
            wire = encoded.lower()  # label lengths are < 64: only letters change
        return cls(text, kind, wire + struct.pack("!HH", kind, dns.rdataclass.IN))

    def wire(self, message_id: int) -> bytes:
        return _HEADER.pack(message_id, _RD, 1, 0, 0, 0) + self.section

    def answered_by(self, data: bytes) -> bool:
        """``data`` is a response to this question (its id is checked by the caller)."""
        end = 12 + len(self.section)
        if len(data) < end or not data[2] & _QR or data[2] & _OPCODE or data[4:6] != b"\0\1":
            return False
        type_and_class = end - 4
        return (
            data[12:type_and_class].lower() == self.section[:-4]
            and data[type_and_class:end] == self.section[-4:]
        )


_Waiting = tuple[Question, "asyncio.Future[Reply]"]


class _Exchange(asyncio.DatagramProtocol):
    """One connected UDP socket to one server and the questions waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, _Waiting] = {}
        self.idle_timer: asyncio.TimerHandle | None = None
        self._ids = array.array("H")

    # -- asyncio's side --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport for datagrams does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) < 12:
            return
        waiting = self.pending.get(int.from_bytes(data[:2], "big"))
        if waiting is None:
            return  # a late answer to a question already settled, or a stray packet
        question, answer = waiting
        if answer.done() or not question.answered_by(data):
            return
        try:
            answer.set_result(read_reply(data))
        except dns.exception.DNSException as exc:
            # Our question, but no message we can read: that is the server's answer.
            answer.set_exception(exc)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error (port unreachable, no route) is about the socket, not one question:
        # everyone waiting hears it and tries again.
        self._fail_all(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(exc or ConnectionResetError("the DNS socket was closed"))

    # -- ours --

    def _fail_all(self, exc: Exception) -> None:
        for _question, answer in self.pending.values():
            if not answer.done():
                answer.set_exception(exc)

    def free_id(self) -> int:
        """A random id no question in flight has (random, so that a forged answer must
        guess it; from the OS's secure source, read in blocks)."""
        while True:
            if not self._ids:
                self._ids.frombytes(os.urandom(2 * _IDS_AT_ONCE))
            message_id = self._ids.pop()
            if message_id not in self.pending:
                return message_id

    def close(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.transport is not None:
            self.transport.close()


def _expire(answer: asyncio.Future[Reply]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


class UdpExchanges:
    """The sockets of one resolver, one per server, made when first needed."""

    def __init__(self, *, idle_close_s: float = IDLE_CLOSE_S) -> None:
        self._idle_close_s = idle_close_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: dict[Server, asyncio.Task[_Exchange]] = {}

    @property
    def open_count(self) -> int:
        """Sockets open now (one per server asked lately)."""
        return len(self._open)

    async def ask(self, question: Question, server: Server, timeout: float) -> Reply:
        """Send ``question`` to ``server`` and wait up to ``timeout`` for its answer.

        Raises TimeoutError, OSError (the server cannot be reached) or a dnspython error
        (its answer cannot be read)."""
        exchange = await self._exchange(server)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Reply] = loop.create_future()
        message_id = exchange.free_id()
        exchange.pending[message_id] = (question, answer)
        if exchange.idle_timer is not None:
            exchange.idle_timer.cancel()
            exchange.idle_timer = None
        # A timer that fails the answer, rather than asyncio.timeout's cancelling
        # machinery: a round waits on 10,000 of them.
        expiry = loop.call_later(timeout, _expire, answer)
        try:
            assert exchange.transport is not None
            exchange.transport.sendto(question.wire(message_id))
            return await answer
        finally:
            expiry.cancel()
            del exchange.pending[message_id]
            if not exchange.pending:
                exchange.idle_timer = loop.call_later(
                    self._idle_close_s, self._close_idle, server, exchange
                )

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
        # Made already (nearly every question): no shield, no wait.
        exchange = task.result() if task.done() else await asyncio.shield(task)
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
