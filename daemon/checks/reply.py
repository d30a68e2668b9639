"""A DNS reply as the stage checks read it: its code, whether it was cut short, and the
A, AAAA and CNAME records of its answer section.

dnspython reads any message, at a cost close to 50 µs each, and a round of checks reads
10,000. Nearly all of them have one shape: one question, then A, AAAA and CNAME records of
class IN whose names are plain labels, compressed or not (RFC 1035 4.1), and nothing in the
other sections. ``read_reply`` reads that shape itself, in a few microseconds, and gives every
other message to dnspython (EDNS, authority records, other types, escapes in a name, anything
malformed), which knows every rule and raises its own errors. Either way the records come as
dnspython groups them: those of one owner and type together, in the order each group first
appears, without repeats. ``tests/test_dns_reply.py`` holds the two readers to the same result
over generated messages, malformed ones included.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rdatatype

A, AAAA, CNAME = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.CNAME
_READ = frozenset({A, AAAA, CNAME})
_IN = 1
_HEADER = struct.Struct("!HHHHHH")
_RECORD = struct.Struct("!HHIH")  # type, class, TTL, length of the data
_TC = 0x0200
_RCODE = 0x000F
_OPCODE = 0x7800  # 0 is QUERY
# Bytes dnspython shows as they are in a name's text; anything else it escapes.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")
_MAX_NAME = 255  # bytes on the wire (RFC 1035 3.1)


@dataclass(frozen=True)
class Record:
    owner: str  # lower case, no final dot
    rdtype: int
    value: str  # an address's canonical text, or a CNAME's target (lower case, no final dot)


@dataclass(frozen=True)
class Reply:
    rcode: int
    truncated: bool
    answer: tuple[Record, ...]

    @classmethod
    def of_message(cls, message: dns.message.Message) -> Reply:
        """The same reply from a message dnspython has read."""
        records = [
            Record(_name_text(rrset.name), rrset.rdtype, _value(rrset.rdtype, rdata))
            for rrset in message.answer
            if rrset.rdtype in _READ and rrset.rdclass == _IN
            for rdata in rrset
        ]
        return cls(int(message.rcode()), bool(message.flags & dns.flags.TC), tuple(records))

    def values(self, owner: str, rdtype: int) -> list[str]:
        """The addresses (or CNAME targets) the answer gives for ``owner``."""
        return [r.value for r in self.answer if r.rdtype == rdtype and r.owner == owner]


def _name_text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _value(rdtype: int, rdata: object) -> str:
    if rdtype == CNAME:
        return _name_text(rdata.target)  # type: ignore[attr-defined]
    # dnspython's text of an IPv6 address may not be canonical (an IPv4-mapped one).
    return str(ipaddress.ip_address(rdata.address))  # type: ignore[attr-defined]


def read_reply(data: bytes) -> Reply:
    """Raises dnspython's errors (``dns.exception.DNSException``) for a message that cannot
    be read."""
    quick = _read_plain(data)
    return quick if quick is not None else Reply.of_message(dns.message.from_wire(data))


def _read_plain(data: bytes) -> Reply | None:
    """The reply when ``data`` has the plain shape, else None (dnspython reads it then)."""
    if len(data) < 12:
        return None
    _id, flags, questions, answers, authority, additional = _HEADER.unpack_from(data)
    if questions != 1 or authority or additional or flags & (_TC | _OPCODE):
        return None
    question = _read_name(data, 12)
    if question is None or question[1] + 4 > len(data):
        return None
    position = question[1] + 4  # past the question's name, type and class
    groups: dict[tuple[str, int], list[str]] = {}
    for _ in range(answers):
        owner = _read_name(data, position)
        if owner is None:
            return None
        text, position = owner
        if position + 10 > len(data):
            return None
        rdtype, rdclass, _ttl, length = _RECORD.unpack_from(data, position)
        start, position = position + 10, position + 10 + length
        if rdclass != _IN or rdtype not in _READ or position > len(data):
            return None
        if rdtype == A:
            if length != 4:
                return None
            first, second, third, fourth = data[start:position]
            value = f"{first}.{second}.{third}.{fourth}"
        elif rdtype == AAAA:
            if length != 16:
                return None
            value = str(ipaddress.IPv6Address(data[start:position]))
        else:
            target = _read_name(data, start)
            if target is None or target[1] != position:
                return None
            value = target[0]
        group = groups.setdefault((text, rdtype), [])
        if rdtype == CNAME:
            group[:] = [value]  # one CNAME per name: dnspython keeps the last
        elif value not in group:
            group.append(value)
    if position != len(data):
        return None  # trailing bytes: dnspython says what is wrong
    records = tuple(
        Record(owner, rdtype, value)
        for (owner, rdtype), values in groups.items()
        for value in values
    )
    return Reply(flags & _RCODE, False, records)


def _read_name(data: bytes, position: int) -> tuple[str, int] | None:
    """A name of plain labels at ``position``: its text and where the data after it starts.

    dnspython's rules for compression (``dns.name.from_wire_parser``): each pointer points
    before the last one (or the name's start), at most ``MAX_COMPRESSION_POINTER_CHAIN``
    of them, and what it points at ends before the part that pointed. Anything else (an
    empty name, other label kinds, escapes) is None."""
    labels: list[str] = []
    size = 1  # the root's byte
    end: int | None = None
    limit = segment = position  # a pointer must point before ``limit``
    bound = len(data)  # reading stops before ``bound``
    hops = 0
    while True:
        if position >= bound:
            return None
        length = data[position]
        if length == 0:
            break
        if length >= 0xC0:  # a pointer
            if position + 1 >= bound:
                return None
            target = ((length & 0x3F) << 8) | data[position + 1]
            hops += 1
            if target >= limit or hops > dns.name.MAX_COMPRESSION_POINTER_CHAIN:
                return None
            if end is None:
                end = position + 2
            bound = segment
            position = limit = segment = target
            continue
        if length > 63 or position + 1 + length > bound:
            return None
        label = data[position + 1 : position + 1 + length]
        if not _PLAIN.issuperset(label):
            return None
        size += length + 1
        if size > _MAX_NAME:
            return None
        labels.append(label.decode("ascii"))
        position += 1 + length
    if not labels:
        return None
    return ".".join(labels).lower(), position + 1 if end is None else end
