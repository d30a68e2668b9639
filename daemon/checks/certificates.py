"""Reading a server certificate (DER, as the handshake gave it) into plain facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFacts:
    subject: str  # the subject's common name (or the whole subject when it has none)
    issuer: str  # the issuer's common name, organisation first when it has one
    names: tuple[str, ...]  # DNS names: the SANs, or the common name when there are none
    not_before: float  # Unix time
    not_after: float
    self_signed: bool
    serial: str

    @classmethod
    def from_der(cls, der: bytes) -> CertFacts:
        cert = x509.load_der_x509_certificate(der)
        subject_cn = _attribute(cert.subject, NameOID.COMMON_NAME)
        names: tuple[str, ...] = ()
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            pass
        else:
            names = tuple(n.lower() for n in san.value.get_values_for_type(x509.DNSName))
        if not names and subject_cn:
            names = (subject_cn.lower(),)
        return cls(
            subject=subject_cn or cert.subject.rfc4514_string(),
            issuer=_issuer(cert.issuer),
            names=names,
            not_before=cert.not_valid_before_utc.timestamp(),
            not_after=cert.not_valid_after_utc.timestamp(),
            self_signed=cert.issuer == cert.subject,
            serial=format(cert.serial_number, "x"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "self_signed": self.self_signed,
            "serial": self.serial,
        }


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _issuer(name: x509.Name) -> str:
    cn = _attribute(name, NameOID.COMMON_NAME)
    org = _attribute(name, NameOID.ORGANIZATION_NAME)
    if cn and org and org not in cn:
        return f"{cn} ({org})"
    return cn or org or name.rfc4514_string()


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate with these DNS names is for ``host``.

    Exact names match; ``*.example.com`` matches one label below it (``a.example.com``, not
    ``example.com`` nor ``a.b.example.com``). The plugin tests wildcard SANs by suffix, but
    its TLS stream verifies the peer name first, which allows one label only, so in effect
    this is its rule too.
    """
    host = host.lower().rstrip(".")
    for name in names:
        if name == host:
            return True
        if name.startswith("*."):
            label, dot, parent = host.partition(".")
            if dot and label and parent == name[2:]:
                return True
    return False


def when(timestamp: float) -> str:
    """A date people read the same anywhere: "2025-05-01 12:00 UTC"."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
