"""The sandbox's certificate authority: one root, and leaf certificates issued by name.

The root is made fresh at start and written as a PEM ``ca_bundle`` that clients trust. Leaf
certificates come in the kinds a real edge shows over a domain's life: ``valid`` (signed by the
root, SAN = the name, a ``*.example.com`` SAN for a wildcard), ``untrusted`` (self-signed: the
placeholder served before Closte has issued the real one), ``expired``, ``expiring`` (valid,
a few days left) and ``mismatch`` (signed by the root, but for another name).

EC P-256 keys keep issuing fast (about a millisecond); each (name, kind) is issued once and
cached, together with the ``ssl.SSLContext`` that serves it.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_BUNDLE_NAME = "ca_bundle.pem"
MISMATCH_NAME = "mismatch.sandbox.invalid"
EXPIRING_DAYS_LEFT = 3
VALID_DAYS = 90
# Backdate not_before a little so a client clock a few seconds behind still accepts it.
_BACKDATE = dt.timedelta(minutes=5)
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9.-]")


class CertKind(StrEnum):
    VALID = "valid"
    UNTRUSTED = "untrusted"
    EXPIRED = "expired"
    EXPIRING = "expiring"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class IssuedCert:
    name: str
    kind: CertKind
    cert_path: Path
    key_path: Path
    certificate: x509.Certificate


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _file_stem(name: str, kind: CertKind) -> str:
    # Names come from clients (SNI): keep only harmless characters in the file name.
    safe = _UNSAFE_FILE_CHARS.sub("_", name.replace("*", "wildcard"))
    return f"{kind.value}-{safe}"


class SandboxCA:
    """A root CA living in ``folder`` (the caller owns the folder and removes it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._root_key = _new_key()
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "closte-sync sandbox"),
                x509.NameAttribute(NameOID.COMMON_NAME, "closte-sync sandbox root CA"),
            ]
        )
        self._root_name = subject
        self.root = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._root_key.public_key()),
                critical=False,
            )
            .sign(self._root_key, hashes.SHA256())
        )
        self.ca_bundle = folder / CA_BUNDLE_NAME
        self.ca_bundle.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        self._issued: dict[tuple[str, CertKind], IssuedCert] = {}
        self._contexts: dict[tuple[str, CertKind], ssl.SSLContext] = {}

    def issue(self, name: str, kind: CertKind) -> IssuedCert:
        """The certificate of ``kind`` for ``name`` (``*.example.com`` for a wildcard)."""
        cached = self._issued.get((name, kind))
        if cached is not None:
            return cached
        issued = self._make(name, kind)
        self._issued[(name, kind)] = issued
        return issued

    def server_context(self, name: str, kind: CertKind) -> ssl.SSLContext:
        """A server-side context presenting the certificate of ``kind`` for ``name``."""
        cached = self._contexts.get((name, kind))
        if cached is not None:
            return cached
        issued = self.issue(name, kind)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(issued.cert_path, issued.key_path)
        self._contexts[(name, kind)] = context
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this root (what a checker would configure)."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def _make(self, name: str, kind: CertKind) -> IssuedCert:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        san_name = MISMATCH_NAME if kind is CertKind.MISMATCH else name
        not_before = now - _BACKDATE
        not_after = now + dt.timedelta(days=VALID_DAYS)
        if kind is CertKind.EXPIRED:
            not_before = now - dt.timedelta(days=VALID_DAYS)
            not_after = now - dt.timedelta(days=1)
        elif kind is CertKind.EXPIRING:
            not_after = now + dt.timedelta(days=EXPIRING_DAYS_LEFT)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, san_name)])
        self_signed = kind is CertKind.UNTRUSTED
        issuer = subject if self_signed else self._root_name
        signing_key = key if self_signed else self._root_key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(san_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._root_key.public_key()),
                critical=False,
            )
        certificate = builder.sign(signing_key, hashes.SHA256())
        stem = _file_stem(name, kind)
        cert_path = self.folder / f"{stem}.crt"
        key_path = self.folder / f"{stem}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return IssuedCert(name, kind, cert_path, key_path, certificate)
