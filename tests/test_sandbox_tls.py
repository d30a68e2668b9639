"""The TLS edge over real loopback sockets: what a client verifying with the CA bundle sees."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from closte_sync.sandbox.ca import MISMATCH_NAME, SandboxCA
from closte_sync.sandbox.state import SandboxState
from closte_sync.sandbox.tls_edge import SandboxClock, TlsEdge

KEY = "test-key"
DELAY_S = 300.0  # far longer than any test runs: only clock.advance() gets past it


@dataclass
class Edge:
    state: SandboxState
    clock: SandboxClock
    tls: TlsEdge
    ca: SandboxCA

    def trusting(self) -> ssl.SSLContext:
        return self.ca.client_context()


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    clock = SandboxClock()
    state = SandboxState(api_keys={KEY}, clock=clock)
    ca = SandboxCA(tmp_path / "ca")
    tls = TlsEdge(state, ca, cert_delay_s=DELAY_S)
    await tls.start()
    try:
        yield Edge(state, clock, tls, ca)
    finally:
        await tls.stop()


async def fetch(
    edge: Edge, name: str, context: ssl.SSLContext | None = None
) -> tuple[dict[str, Any], bytes]:
    """Handshake with SNI ``name`` (verifying with the CA bundle), GET /, return cert and reply."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", edge.tls.port, ssl=context or edge.trusting(), server_hostname=name
    )
    try:
        cert = writer.get_extra_info("peercert")
        writer.write(f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
        reply = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    return cert, reply


async def verify_error(edge: Edge, name: str) -> ssl.SSLCertVerificationError:
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await fetch(edge, name)
    return caught.value


def san(cert: dict[str, Any]) -> list[str]:
    return [value for kind, value in cert["subjectAltName"] if kind == "DNS"]


async def test_held_alias_is_untrusted_until_the_delay_passes(edge: Edge) -> None:
    edge.state.add_alias(KEY, "shop.example.com", wildcard=False)
    error = await verify_error(edge, "shop.example.com")
    assert "self-signed" in error.verify_message or "self signed" in error.verify_message

    edge.clock.advance(DELAY_S - 1)
    await verify_error(edge, "shop.example.com")

    edge.clock.advance(1)
    cert, reply = await fetch(edge, "shop.example.com")
    assert san(cert) == ["shop.example.com"]
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b"shop.example.com\n")


async def test_name_nobody_holds_gets_the_placeholder(edge: Edge) -> None:
    edge.clock.advance(DELAY_S * 10)
    await verify_error(edge, "unknown.example.com")


async def test_removed_alias_falls_back_to_the_placeholder(edge: Edge) -> None:
    edge.state.add_alias(KEY, "gone.example.com", wildcard=False)
    edge.clock.advance(DELAY_S)
    await fetch(edge, "gone.example.com")
    edge.state.remove_alias(KEY, "gone.example.com")
    await verify_error(edge, "gone.example.com")


async def test_wildcard_alias_covers_one_label_below(edge: Edge) -> None:
    edge.state.add_alias(KEY, "*.example.net", wildcard=True)
    edge.clock.advance(DELAY_S)
    cert, reply = await fetch(edge, "blog.example.net")
    assert san(cert) == ["*.example.net"]
    assert reply.endswith(b"blog.example.net\n")
    await verify_error(edge, "example.net")
    await verify_error(edge, "a.blog.example.net")


async def test_expired_override(edge: Edge) -> None:
    edge.state.add_alias(KEY, "old.example.com", wildcard=False)
    edge.tls.set_mode("old.example.com", "expired")
    error = await verify_error(edge, "old.example.com")
    assert error.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED


async def test_mismatch_override(edge: Edge) -> None:
    edge.tls.set_mode("shop.example.com", "mismatch")
    error = await verify_error(edge, "shop.example.com")
    assert error.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH
    # Without the name check the certificate itself is fine: it is just for another host.
    context = edge.trusting()
    context.check_hostname = False
    cert, _ = await fetch(edge, "shop.example.com", context)
    assert san(cert) == [MISMATCH_NAME]


async def test_expiring_override_is_valid_with_days_left(edge: Edge) -> None:
    edge.tls.set_mode("soon.example.com", "expiring")
    cert, _ = await fetch(edge, "soon.example.com")
    not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), dt.UTC)
    assert not_after - dt.datetime.now(dt.UTC) < dt.timedelta(days=4)


async def test_valid_now_skips_the_delay_and_auto_restores_it(edge: Edge) -> None:
    edge.state.add_alias(KEY, "fast.example.com", wildcard=False)
    edge.tls.set_mode("fast.example.com", "valid-now")
    await fetch(edge, "fast.example.com")
    edge.tls.set_mode("fast.example.com", "auto")
    await verify_error(edge, "fast.example.com")


async def test_untrusted_override_beats_an_issued_certificate(edge: Edge) -> None:
    edge.state.add_alias(KEY, "shop.example.com", wildcard=False)
    edge.clock.advance(DELAY_S)
    edge.tls.set_mode("shop.example.com", "untrusted")
    await verify_error(edge, "shop.example.com")
    edge.tls.set_mode("shop.example.com", None)
    await fetch(edge, "shop.example.com")


def test_unknown_mode_is_refused_with_the_choices(edge: Edge) -> None:
    with pytest.raises(ValueError, match=r"unknown certificate mode 'broken'.*valid-now"):
        edge.tls.set_mode("shop.example.com", "broken")


async def test_client_without_sni_gets_the_placeholder(edge: Edge) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", edge.tls.port, ssl=context, server_hostname=""
    )
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert reply.endswith(b"sandbox.invalid\n")


async def test_https_client_gets_an_answer_with_the_bundle(edge: Edge) -> None:
    edge.state.add_alias(KEY, "shop.example.com", wildcard=False)
    edge.clock.advance(DELAY_S)
    async with httpx.AsyncClient(verify=edge.trusting()) as client:
        response = await client.get(
            f"https://127.0.0.1:{edge.tls.port}/",
            extensions={"sni_hostname": "shop.example.com"},
        )
    assert response.status_code == 200
    assert "shop.example.com" in response.text


async def test_client_that_hangs_up_does_not_break_the_edge(edge: Edge) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", edge.tls.port)
    writer.write(b"not tls at all\r\n\r\n")
    writer.close()
    edge.tls.set_mode("after.example.com", "valid-now")
    cert, _ = await fetch(edge, "after.example.com")
    assert san(cert) == ["after.example.com"]
