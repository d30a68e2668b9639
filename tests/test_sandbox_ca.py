"""The sandbox CA: each certificate kind verifies (or fails) the way a real client sees it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from closte_sync.sandbox.ca import EXPIRING_DAYS_LEFT, MISMATCH_NAME, CertKind, SandboxCA


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> SandboxCA:
    return SandboxCA(tmp_path_factory.mktemp("ca"))


def verify(ca: SandboxCA, leaf: x509.Certificate, name: str) -> None:
    """Verify ``leaf`` for ``name`` against the bundle on disk, as a TLS client would."""
    roots = x509.load_pem_x509_certificates(ca.ca_bundle.read_bytes())
    verifier = PolicyBuilder().store(Store(roots)).build_server_verifier(x509.DNSName(name))
    verifier.verify(leaf, [])


def sans(cert: x509.Certificate) -> list[str]:
    extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return extension.value.get_values_for_type(x509.DNSName)


def test_bundle_holds_one_root_ca(ca: SandboxCA) -> None:
    roots = x509.load_pem_x509_certificates(ca.ca_bundle.read_bytes())
    assert len(roots) == 1
    constraints = roots[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True


def test_valid_certificate_verifies_for_its_name(ca: SandboxCA) -> None:
    issued = ca.issue("shop.example.com", CertKind.VALID)
    assert sans(issued.certificate) == ["shop.example.com"]
    verify(ca, issued.certificate, "shop.example.com")
    with pytest.raises(VerificationError):
        verify(ca, issued.certificate, "other.example.com")


def test_wildcard_certificate_covers_one_label(ca: SandboxCA) -> None:
    issued = ca.issue("*.example.org", CertKind.VALID)
    assert sans(issued.certificate) == ["*.example.org"]
    verify(ca, issued.certificate, "blog.example.org")
    with pytest.raises(VerificationError):
        verify(ca, issued.certificate, "a.blog.example.org")


def test_untrusted_placeholder_is_self_signed(ca: SandboxCA) -> None:
    issued = ca.issue("shop.example.com", CertKind.UNTRUSTED)
    assert issued.certificate.issuer == issued.certificate.subject
    assert sans(issued.certificate) == ["shop.example.com"]
    with pytest.raises(VerificationError):
        verify(ca, issued.certificate, "shop.example.com")


def test_expired_certificate_fails(ca: SandboxCA) -> None:
    issued = ca.issue("old.example.com", CertKind.EXPIRED)
    assert issued.certificate.not_valid_after_utc < dt.datetime.now(dt.UTC)
    with pytest.raises(VerificationError):
        verify(ca, issued.certificate, "old.example.com")


def test_expiring_certificate_is_valid_with_days_left(ca: SandboxCA) -> None:
    issued = ca.issue("soon.example.com", CertKind.EXPIRING)
    verify(ca, issued.certificate, "soon.example.com")
    left = issued.certificate.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=EXPIRING_DAYS_LEFT - 1) < left <= dt.timedelta(days=EXPIRING_DAYS_LEFT)


def test_mismatched_certificate_names_another_host(ca: SandboxCA) -> None:
    issued = ca.issue("shop.example.com", CertKind.MISMATCH)
    assert sans(issued.certificate) == [MISMATCH_NAME]
    verify(ca, issued.certificate, MISMATCH_NAME)
    with pytest.raises(VerificationError):
        verify(ca, issued.certificate, "shop.example.com")


def test_issuing_is_cached_per_name_and_kind(ca: SandboxCA) -> None:
    first = ca.issue("cache.example.com", CertKind.VALID)
    assert ca.issue("cache.example.com", CertKind.VALID) is first
    assert ca.issue("cache.example.com", CertKind.EXPIRED) is not first
    context = ca.server_context("cache.example.com", CertKind.VALID)
    assert ca.server_context("cache.example.com", CertKind.VALID) is context


def test_files_stay_inside_the_folder_whatever_the_name(ca: SandboxCA) -> None:
    issued = ca.issue("../../evil/name", CertKind.UNTRUSTED)
    for path in (issued.cert_path, issued.key_path):
        assert path.parent == ca.folder
        assert path.exists()


def test_two_authorities_do_not_trust_each_other(tmp_path: Path, ca: SandboxCA) -> None:
    other = SandboxCA(tmp_path)
    issued = other.issue("shop.example.com", CertKind.VALID)
    with pytest.raises(VerificationError):
        verify(ca, issued.certificate, "shop.example.com")
