"""The sandbox's DNS responder: in-memory records, UDP and TCP on one loopback port.

The sandbox plays the authoritative server for every name it is asked about. A name with no
record answers NXDOMAIN (never REFUSED): test domains are arbitrary, and NXDOMAIN is what a
customer's missing record looks like to the daemon. Records are set at run time:

- A / AAAA addresses for a name;
- a CNAME (answered as the chain, followed while the targets are in the sandbox's data);
- a forced rcode (NXDOMAIN, SERVFAIL, REFUSED) for a name;
- a delay before answering a name (slow servers);
- a number of UDP queries for a name to drop unanswered (lost packets);
- wildcard records (``*.example.com``), used only for names that have no entry of their own.

Messages are parsed and built with dnspython, except the commonest UDP question of all (one
A or AAAA question, no EDNS, for a name with addresses of its own): its answer is written
straight from the query's bytes, in the datagram callback, because a check round asks ten
thousand of them and the sandbox shares the machine with the daemon it serves.
``tests/test_sandbox_dns.py`` holds those bytes equal to dnspython's. Over UDP an answer
larger than the client's limit (512 bytes, or its EDNS payload size) is sent empty with TC
set, so the client retries over TCP, where messages carry the usual 2-byte length prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from closte_sync.shared.domains import WILDCARD_PREFIX, normalize_domain

DEFAULT_TTL = 60
UDP_LIMIT_WITHOUT_EDNS = 512
MAX_CNAME_HOPS = 8
FORCEABLE_RCODES = ("NXDOMAIN", "SERVFAIL", "REFUSED")
_TCP_IDLE_TIMEOUT_S = 30.0
_PORT_TRIES = 20


@dataclass
class DnsEntry:
    """What the sandbox knows about one name."""

    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    cname: str | None = None
    rcode: dns.rcode.Rcode | None = None
    delay_s: float = 0.0
    drop: int = 0  # the next this many UDP queries for the name get no answer

    @property
    def has_data(self) -> bool:
        return bool(self.a or self.aaaa or self.cname)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": list(self.a),
            "aaaa": list(self.aaaa),
            "cname": self.cname,
            "rcode": dns.rcode.to_text(self.rcode) if self.rcode is not None else None,
            "delay_ms": round(self.delay_s * 1000),
            "drop": self.drop,
        }


@dataclass(frozen=True)
class DnsAnswer:
    rcode: dns.rcode.Rcode
    rrsets: list[dns.rrset.RRset]
    delay_s: float


def _addresses(name: str, kind: str, values: Iterable[str], version: int) -> list[str]:
    if isinstance(values, str):
        values = [values]
    result = []
    for value in values:
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            address = None
        if address is None or address.version != version:
            raise ValueError(f"{name}: {kind!r} item {value!r} is not an IPv{version} address")
        result.append(str(address))
    return result


class DnsZones:
    """The records, by normalised name (ASCII, lower case, no trailing dot)."""

    def __init__(self, ttl: int = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._entries: dict[str, DnsEntry] = {}

    # -- changing the data ------------------------------------------------------------------

    def _entry(self, name: str) -> DnsEntry:
        return self._entries.setdefault(normalize_domain(name), DnsEntry())

    def set_a(self, name: str, addresses: Iterable[str]) -> None:
        """Set the name's A records (replacing a CNAME: a name cannot have both)."""
        entry = self._entry(name)
        entry.a = _addresses(name, "a", addresses, 4)
        entry.cname = None

    def set_aaaa(self, name: str, addresses: Iterable[str]) -> None:
        entry = self._entry(name)
        entry.aaaa = _addresses(name, "aaaa", addresses, 6)
        entry.cname = None

    def set_cname(self, name: str, target: str) -> None:
        """Point ``name`` at ``target`` (dropping its own addresses)."""
        entry = self._entry(name)
        entry.cname = normalize_domain(target)
        entry.a = []
        entry.aaaa = []

    def set_rcode(self, name: str, rcode: str | None) -> None:
        """Force an answer code for ``name``; None or "NOERROR" stops forcing."""
        entry = self._entry(name)
        if rcode is None or rcode.upper() == "NOERROR":
            entry.rcode = None
            return
        if rcode.upper() not in FORCEABLE_RCODES:
            raise ValueError(
                f"{name}: rcode {rcode!r} is not one of NOERROR, {', '.join(FORCEABLE_RCODES)}"
            )
        entry.rcode = dns.rcode.from_text(rcode.upper())

    def set_delay(self, name: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"{name}: delay must be 0 or more, not {seconds}")
        self._entry(name).delay_s = seconds

    def set_drop(self, name: str, count: int) -> None:
        """Leave the next ``count`` UDP queries for ``name`` unanswered, as lost packets are."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name}: 'drop' must be a whole number >= 0, not {count!r}")
        self._entry(name).drop = count

    def take_drop(self, qname: str) -> bool:
        """True (and one fewer to drop) when the next query for ``qname`` is to be lost."""
        entry = self._entries.get(qname.rstrip(".").lower())
        if entry is None or entry.drop <= 0:
            return False
        entry.drop -= 1
        return True

    def delete(self, name: str) -> bool:
        return self._entries.pop(normalize_domain(name), None) is not None

    def clear(self) -> None:
        self._entries.clear()

    def get(self, name: str) -> DnsEntry | None:
        return self._entries.get(normalize_domain(name))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: entry.as_dict() for name, entry in sorted(self._entries.items())}

    def apply(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one control request, e.g. ``{"name": "a.com", "a": ["127.0.0.2"]}``.

        Keys: ``name`` (required), ``a``, ``aaaa``, ``cname``, ``rcode``, ``delay_ms``,
        ``drop`` (UDP queries to leave unanswered), ``delete`` (true drops the name first).
        Answers the name's entry afterwards.
        Raises ValueError naming the field on bad input, before changing anything.
        """
        known = {"name", "a", "aaaa", "cname", "rcode", "delay_ms", "drop", "delete"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; known: {sorted(known)}")
        raw_name = spec.get("name")
        if not isinstance(raw_name, str):
            raise ValueError("field 'name' is required (a domain name)")
        name = normalize_domain(raw_name)
        # Validate into a scratch copy so a bad field changes nothing.
        scratch = DnsZones(self.ttl)
        current = self._entries.get(name)
        if current is not None and not spec.get("delete"):
            scratch._entries[name] = DnsEntry(
                list(current.a),
                list(current.aaaa),
                current.cname,
                current.rcode,
                current.delay_s,
                current.drop,
            )
        if "a" in spec:
            scratch.set_a(name, spec["a"] or [])
        if "aaaa" in spec:
            scratch.set_aaaa(name, spec["aaaa"] or [])
        if spec.get("cname"):
            scratch.set_cname(name, str(spec["cname"]))
        if "rcode" in spec:
            scratch.set_rcode(name, None if spec["rcode"] is None else str(spec["rcode"]))
        if "delay_ms" in spec:
            delay = spec["delay_ms"]
            if not isinstance(delay, int | float) or isinstance(delay, bool):
                raise ValueError(f"{name}: 'delay_ms' must be a number, not {delay!r}")
            scratch.set_delay(name, float(delay) / 1000)
        if "drop" in spec:
            scratch.set_drop(name, spec["drop"])
        entry = scratch._entries.get(name)
        if entry is None:
            self._entries.pop(name, None)
            return {"success": True, "name": name, "record": None}
        self._entries[name] = entry
        return {"success": True, "name": name, "record": entry.as_dict()}

    # -- answering --------------------------------------------------------------------------

    def plain_addresses(self, name: str, qtype: int) -> list[str] | None:
        """The addresses answering ``qtype`` for ``name`` when they are the whole answer
        (its own entry, no CNAME, rcode, delay or drop); None otherwise."""
        entry = self._entries.get(name)
        if (
            entry is None
            or entry.cname is not None
            or entry.rcode is not None
            or entry.delay_s
            or entry.drop
        ):
            return None
        found = entry.a if qtype == dns.rdatatype.A else entry.aaaa
        return found or None

    def lookup(self, name: str) -> tuple[str, DnsEntry] | None:
        """The entry answering ``name``: its own, else the closest ``*.`` wildcard above it."""
        entry = self._entries.get(name)
        if entry is not None and (entry.has_data or entry.rcode is not None):
            return name, entry
        labels = name.split(".")
        for start in range(1, len(labels) - 1):
            wildcard = WILDCARD_PREFIX + ".".join(labels[start:])
            found = self._entries.get(wildcard)
            if found is not None and (found.has_data or found.rcode is not None):
                return wildcard, found
        return None

    def answer(self, qname: str, qtype: dns.rdatatype.RdataType) -> DnsAnswer:
        name = qname.rstrip(".").lower()
        own = self._entries.get(name)
        delay = own.delay_s if own is not None else 0.0
        rrsets: list[dns.rrset.RRset] = []
        for _hop in range(MAX_CNAME_HOPS):
            found = self.lookup(name)
            if found is None:
                # Names with nothing: NXDOMAIN (with the chain that led here, if any).
                return DnsAnswer(dns.rcode.NXDOMAIN, rrsets, delay)
            _owner, entry = found
            if entry.rcode is not None:
                return DnsAnswer(entry.rcode, rrsets, delay)
            if entry.cname is not None and qtype != dns.rdatatype.CNAME:
                rrsets.append(self._rrset(name, dns.rdatatype.CNAME, [entry.cname + "."]))
                name = entry.cname
                continue
            rrsets.extend(self._data(name, entry, qtype))
            return DnsAnswer(dns.rcode.NOERROR, rrsets, delay)
        return DnsAnswer(dns.rcode.SERVFAIL, [], delay)  # a CNAME loop

    def _data(
        self, name: str, entry: DnsEntry, qtype: dns.rdatatype.RdataType
    ) -> list[dns.rrset.RRset]:
        wanted = {
            dns.rdatatype.A: [(dns.rdatatype.A, entry.a)],
            dns.rdatatype.AAAA: [(dns.rdatatype.AAAA, entry.aaaa)],
            dns.rdatatype.CNAME: [
                (dns.rdatatype.CNAME, [f"{entry.cname}."] if entry.cname else [])
            ],
            dns.rdatatype.ANY: [(dns.rdatatype.A, entry.a), (dns.rdatatype.AAAA, entry.aaaa)],
        }.get(qtype, [])
        return [self._rrset(name, rdtype, values) for rdtype, values in wanted if values]

    def _rrset(
        self, name: str, rdtype: dns.rdatatype.RdataType, values: list[str]
    ) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(
            dns.name.from_text(name), self.ttl, dns.rdataclass.IN, rdtype, values
        )


_QUICK_HEADER_TAIL = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # 1 question, no other record
_RR_HEAD = struct.Struct("!HHHIH")  # pointer to the question's name, type, class, TTL, length
_NAME_POINTER = 0xC00C  # the name at offset 12, the question's
_PACKED = {dns.rdatatype.A: socket.AF_INET, dns.rdatatype.AAAA: socket.AF_INET6}


def quick_answer(zones: DnsZones, wire: bytes) -> bytes | None:
    """The UDP answer to a plain A or AAAA query for a name with its own addresses, written
    from the query's bytes; None for anything else (dnspython answers those)."""
    # QR clear, opcode QUERY, one question and nothing else (no EDNS).
    if len(wire) < 17 or wire[2] & 0xF8 or wire[4:12] != _QUICK_HEADER_TAIL:
        return None
    labels, at = [], 12
    while (length := wire[at]) != 0:
        if length > 63 or at + 1 + length >= len(wire):
            return None  # a pointer, or a name running off the end
        labels.append(wire[at + 1 : at + 1 + length])
        at += 1 + length
    end = at + 5
    if end != len(wire) or not labels:
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, at + 1)
    family = _PACKED.get(qtype)
    if family is None or qclass != dns.rdataclass.IN:
        return None
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return None  # escapes and other bytes: dnspython's rules
    addresses = zones.plain_addresses(name, qtype)
    if addresses is None:
        return None
    flags = dns.flags.QR | dns.flags.AA | (wire[2] << 8 & dns.flags.RD)
    header = struct.pack("!HHHHHH", int.from_bytes(wire[:2]), flags, 1, len(addresses), 0, 0)
    records = b"".join(
        _RR_HEAD.pack(_NAME_POINTER, qtype, dns.rdataclass.IN, zones.ttl, len(packed)) + packed
        for packed in (socket.inet_pton(family, address) for address in addresses)
    )
    reply = header + wire[12:end] + records
    return reply if len(reply) <= UDP_LIMIT_WITHOUT_EDNS else None


def _formerr(wire: bytes) -> bytes | None:
    """A bare FORMERR header for a message dnspython cannot parse (None: not even an id)."""
    if len(wire) < 2:
        return None
    (query_id,) = struct.unpack("!H", wire[:2])
    return struct.pack("!HHHHHH", query_id, dns.flags.QR | dns.rcode.FORMERR, 0, 0, 0, 0)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport; it behaves as one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = quick_answer(self.server.zones, data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
            return
        self.server._spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = await self.server.respond(data, udp=True)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DnsServer:
    """Serves ``zones`` over UDP and TCP on the same port of ``host``."""

    def __init__(self, zones: DnsZones | None = None) -> None:
        self.zones = zones if zones is not None else DnsZones()
        self.host = "127.0.0.1"
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """``host:port``, the form ``[checks] nameservers`` accepts."""
        return f"{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind UDP and TCP to one port; with port 0, try chosen ports until both fit."""
        self.host = host
        tries = _PORT_TRIES if port == 0 else 1
        for attempt in range(tries):
            loop = asyncio.get_running_loop()
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            chosen = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, host, chosen)
            except OSError:
                udp.close()
                if attempt + 1 == tries:
                    raise
                continue
            self._udp = udp
            self.port = chosen
            return

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def respond(self, wire: bytes, udp: bool) -> bytes | None:
        """The answer to one wire-format query (after the name's delay), or None to drop it."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _formerr(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        else:
            question = query.question[0]
            if udp and self.zones.take_drop(question.name.to_text()):
                return None  # a lost packet: the client has to ask again
            answer = self.zones.answer(question.name.to_text(), question.rdtype)
            if answer.delay_s > 0:
                await asyncio.sleep(answer.delay_s)
            response.set_rcode(answer.rcode)
            response.answer.extend(answer.rrsets)
        if not udp:
            return response.to_wire()
        limit = max(query.payload, UDP_LIMIT_WITHOUT_EDNS) if query.edns >= 0 else 0
        limit = limit or UDP_LIMIT_WITHOUT_EDNS
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            # Too big for UDP: an empty answer with TC set sends the client to TCP.
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire(max_size=limit)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                async with asyncio.timeout(_TCP_IDLE_TIMEOUT_S):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    wire = await reader.readexactly(length)
                reply = await self.respond(wire, udp=False)
                if reply is None:
                    return
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass  # the client closed or went quiet: end the connection
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)
