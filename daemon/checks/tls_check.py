"""The TLS stage check: a real handshake with SNI, as the plugin's certificate check makes.

It connects to the address DNS gave (the next one when a connection fails) on
``[checks] tls_port``, verifies the chain against ``[checks] ca_bundle`` (or the system's
trust store) and the host name, and checks the validity window. The certificate is read with
``cryptography`` even when verification fails (a second handshake that does not verify), so
the advice can say whose certificate it is, when it expired, or that Closte has not issued
it yet. Connection failures are failures with advice, never exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from closte_sync.daemon.checks.certificates import CertFacts, covers, when
from closte_sync.daemon.checks.probe import probe_name
from closte_sync.daemon.checks.results import CheckResult
from closte_sync.daemon.settings import ChecksSettings
from closte_sync.shared.domains import DomainError, normalize_domain

DAY_S = 86400.0
# OpenSSL's verify codes (X509_V_ERR_*) that the advice tells apart.
_EXPIRED = 10
_NOT_YET_VALID = 9
_HOSTNAME_MISMATCH = 62
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
_CLOSTE_DELAY = "Closte issues it by itself after the domain is added, usually within 5-10 minutes"


@dataclass(frozen=True)
class _Handshake:
    """One connection attempt: the certificate, or why there is none."""

    address: str
    der: bytes | None = None
    verify_code: int | None = None  # set when verification failed
    verify_message: str | None = None
    connect_error: str | None = None  # set when no TLS session came up
    refused: bool = False
    timed_out: bool = False
    handshake_error: str | None = None  # TCP connected, TLS failed (not a verification error)


class TlsChecker:
    def __init__(
        self,
        settings: ChecksSettings,
        *,
        timeout_s: float = 10.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        """Raises ValueError naming ``[checks] ca_bundle`` when the bundle cannot be loaded."""
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be more than 0, not {timeout_s}")
        self.port = settings.tls_port
        self.timeout_s = timeout_s
        self.now = now
        self.trust = str(settings.ca_bundle) if settings.ca_bundle else "the system trust store"
        try:
            cafile = str(settings.ca_bundle) if settings.ca_bundle else None
            self._verifying = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"[checks] ca_bundle: cannot load {settings.ca_bundle}: {exc}"
            ) from exc
        # Used only to read the certificate after verification failed; never to judge it.
        self._reading = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._reading.check_hostname = False
        self._reading.verify_mode = ssl.CERT_NONE

    async def check(self, domain: str, addresses: Sequence[str]) -> CheckResult:
        try:
            name = normalize_domain(domain)
        except DomainError as exc:
            return CheckResult.not_a_domain("tls", domain, exc)
        asked = probe_name(name)
        details: dict[str, Any] = {
            "server_name": asked,
            "port": self.port,
            "trust": self.trust,
            "tried": [],
        }
        if not addresses:
            return CheckResult(
                "tls",
                name,
                False,
                f"no address to connect to for {asked}",
                "tls-unreachable",
                "the DNS check gave no address; it runs first and the TLS check follows once "
                "the domain points at the network",
                details,
                inconclusive=True,
                asked=asked,
            )
        attempt: _Handshake | None = None
        for address in addresses:
            attempt = await self._handshake(address, asked, self._verifying)
            details["tried"].append({"address": address, "error": attempt.connect_error})
            if attempt.connect_error is None:
                break
        assert attempt is not None
        details["address"] = attempt.address
        if attempt.connect_error is not None:
            return self._unreachable(name, asked, addresses, attempt, details)
        if attempt.handshake_error is not None:
            details["error"] = attempt.handshake_error
            return CheckResult(
                "tls",
                name,
                False,
                f"TLS handshake with {attempt.address}:{self.port} for {asked} failed: "
                f"{attempt.handshake_error}",
                "tls-handshake",
                f"something answers on port {self.port} but does not complete TLS for {asked} "
                f"(no certificate for that name, or not an HTTPS server); {_CLOSTE_DELAY}. If "
                "it lasts, check that DNS points at the Closte server, not another host.",
                details,
                asked=asked,
            )
        if attempt.verify_code is not None:
            # Read what was served without verifying, to say what is wrong with it.
            seen = await self._handshake(attempt.address, asked, self._reading)
            attempt = _Handshake(
                attempt.address, seen.der, attempt.verify_code, attempt.verify_message
            )
        facts = CertFacts.from_der(attempt.der) if attempt.der else None
        if facts is not None:
            details["certificate"] = facts.to_json()
        if attempt.verify_message:
            details["verify_error"] = {
                "code": attempt.verify_code,
                "message": attempt.verify_message,
            }
        return self._judge(name, asked, attempt, facts, details)

    async def _handshake(
        self, address: str, server_name: str, context: ssl.SSLContext
    ) -> _Handshake:
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                _, writer = await asyncio.open_connection(
                    address,
                    self.port,
                    ssl=context,
                    server_hostname=server_name,
                    # Past the overall timeout, so that one always speaks first.
                    ssl_handshake_timeout=self.timeout_s + 1.0,
                )
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            return _Handshake(address, der=der)
        except ssl.SSLCertVerificationError as exc:
            return _Handshake(
                address, verify_code=exc.verify_code, verify_message=exc.verify_message
            )
        except ssl.SSLError as exc:
            return _Handshake(address, handshake_error=exc.reason or str(exc))
        except TimeoutError:
            return _Handshake(
                address, connect_error=f"no answer within {self.timeout_s:g} s", timed_out=True
            )
        except ConnectionRefusedError:
            return _Handshake(address, connect_error="connection refused", refused=True)
        except OSError as exc:
            return _Handshake(address, connect_error=exc.strerror or str(exc))
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                    async with asyncio.timeout(self.timeout_s):
                        await writer.wait_closed()

    def _unreachable(
        self,
        name: str,
        asked: str,
        addresses: Sequence[str],
        last: _Handshake,
        details: dict[str, Any],
    ) -> CheckResult:
        where = ", ".join(f"{a}:{self.port}" for a in addresses)
        if last.refused:
            advice = (
                f"nothing accepts connections on port {self.port} at {where}: the web server "
                "is down there or a firewall rejects HTTPS"
            )
        elif last.timed_out:
            advice = (
                f"{where} did not answer on port {self.port}: a firewall may drop HTTPS, or the "
                "address is not a server"
            )
        else:
            advice = f"could not connect to {where}: {last.connect_error}"
        return CheckResult(
            "tls",
            name,
            False,
            f"cannot connect to {where} for {asked}: {last.connect_error}",
            "tls-unreachable",
            f"{advice}. Check that {name} points at the Closte server (the DNS check) and that "
            f"port {self.port} is open.",
            details,
            asked=asked,
        )

    def _judge(
        self,
        name: str,
        asked: str,
        attempt: _Handshake,
        facts: CertFacts | None,
        details: dict[str, Any],
    ) -> CheckResult:
        now = self.now()
        code = attempt.verify_code

        def result(ok: bool, summary: str, hint: str | None, advice: str | None) -> CheckResult:
            return CheckResult(
                "tls",
                name,
                ok,
                summary,
                hint,
                advice,
                details,
                not_after=facts.not_after if facts else None,
                issuer=facts.issuer if facts else None,
                names=facts.names if facts else (),
                asked=asked,
            )

        served = f"the certificate is for {', '.join(facts.names)}" if facts else "a certificate"
        issuer = facts.issuer if facts else "an unknown issuer"
        if code in _UNTRUSTED or (code is None and facts is None):
            return result(
                False,
                f"{asked}: {served}, issued by an untrusted CA ({issuer})",
                "tls-not-issued",
                f"{asked} is served a placeholder certificate issued by an untrusted CA "
                f"({issuer}): Closte has not issued the real one yet. {_CLOSTE_DELAY}; "
                "closte-sync keeps checking.",
            )
        if code == _EXPIRED or (facts and now > facts.not_after):
            expired = when(facts.not_after) if facts else "an earlier date"
            return result(
                False,
                f"{asked}: the certificate expired on {expired} ({issuer})",
                "tls-expired",
                f"the certificate for {asked} expired on {expired}. Closte renews certificates "
                f"by itself; a renewal fails when {name} no longer points at the Closte server "
                "or the alias is gone: check both, then contact Closte support if it lasts.",
            )
        if code == _NOT_YET_VALID or (facts and now < facts.not_before):
            start = when(facts.not_before) if facts else "a later date"
            return result(
                False,
                f"{asked}: the certificate is valid only from {start}",
                "tls-not-yet-valid",
                f"the certificate for {asked} starts on {start}: the server's clock (or ours) is "
                "wrong; check the time on both, or wait until then.",
            )
        if code == _HOSTNAME_MISMATCH or (facts and not covers(facts.names, asked)):
            return result(
                False,
                f"{asked}: {served}, not {asked}",
                "tls-mismatch",
                f"{served}, not {asked}: the server that answers does not have {name} yet. "
                "If the alias was just added, wait: Closte usually issues the certificate "
                f"within 5-10 minutes; otherwise check that {name} "
                "points at this network's Closte server and that the alias is on Closte.",
            )
        if code is not None:
            return result(
                False,
                f"{asked}: the certificate was not accepted: {attempt.verify_message}",
                "tls-not-issued",
                f"the certificate for {asked} was refused ({attempt.verify_message}, issuer "
                f"{issuer}). {_CLOSTE_DELAY}; if it lasts, contact Closte support.",
            )
        assert facts is not None
        days = (facts.not_after - now) / DAY_S
        return result(
            True,
            f"{asked}: valid certificate from {issuer}, expires {when(facts.not_after)} "
            f"(in {days:.0f} days)",
            None,
            None,
        )


def expiry_warning(result: CheckResult, now: float, days: int = 14) -> str | None:
    """A warning when a good certificate expires within ``days`` (or has expired), else None.

    For the daemon's daily re-check of done domains.
    """
    if result.kind != "tls" or result.not_after is None:
        return None
    left = result.not_after - now
    if left > days * DAY_S:
        return None
    name = result.asked or result.domain
    if left <= 0:
        return (
            f"the certificate for {name} expired on {when(result.not_after)}: Closte renews "
            f"certificates by itself; check that {result.domain} still points at the Closte "
            "server and the alias is on Closte."
        )
    return (
        f"the certificate for {name} expires on {when(result.not_after)} (in "
        f"{left / DAY_S:.0f} days): Closte renews certificates by itself before they expire; "
        f"if it is not renewed within a few days, check that {result.domain} still points at "
        "the Closte server and the alias is on Closte."
    )
