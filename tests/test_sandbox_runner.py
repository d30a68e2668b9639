"""The composed sandbox: its info, its control calls over HTTP, and `closte-sync sandbox`."""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncresolver
import httpx
import pytest

from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

INFO_KEYS = {"api", "dns", "tls_port", "ca_bundle", "network_ip", "api_key"}


def resolver(dns_address: str) -> dns.asyncresolver.Resolver:
    host, port = dns_address.rsplit(":", 1)
    result = dns.asyncresolver.Resolver(configure=False)
    result.nameservers = [host]
    result.port = int(port)
    result.lifetime = 3.0
    return result


async def resolve_a(dns_address: str, name: str) -> list[str]:
    answer = await resolver(dns_address).resolve(name, "A")
    return [rdata.to_text() for rdata in answer]


async def tls_names(port: int, ca_bundle: str, name: str) -> list[str]:
    """Handshake as a verifying client; the certificate's DNS names (raises on a bad one)."""
    context = ssl.create_default_context(cafile=ca_bundle)
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=name)
    cert = writer.get_extra_info("peercert")
    writer.close()
    return [value for kind, value in cert["subjectAltName"] if kind == "DNS"]


async def closte_call(sb: Sandbox, path: str, **fields: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sb.info()["api"]) as client:
        response = await client.post(path, data={"apikey": sb.api_key, **fields})
    result: dict[str, Any] = response.json()
    return result


async def control(sb: Sandbox, name: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sb.info()["api"]) as client:
        return await client.post(f"/_sandbox/{name}", json=body)


async def test_info_has_exactly_the_documented_shape(closte_sandbox: Sandbox) -> None:
    info = closte_sandbox.info()
    assert set(info) == INFO_KEYS
    assert info["api"].startswith("http://127.0.0.1:")
    host, port = info["dns"].split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert isinstance(info["tls_port"], int) and info["tls_port"] > 0
    bundle = await asyncio.to_thread(Path(info["ca_bundle"]).read_text)
    assert bundle.startswith("-----BEGIN CERTIFICATE-----")
    assert info["network_ip"] == "127.0.0.2"
    assert info["api_key"].startswith("sandbox-") and len(info["api_key"]) > 20
    json.dumps(info)  # one JSON line must be possible


async def test_tls_edge_answers_where_its_dns_points(closte_sandbox: Sandbox) -> None:
    """The network IP (where the sandbox's DNS points names) serves the edge on the same port."""
    info = closte_sandbox.info()
    closte_sandbox.tls.set_mode("shop.example.com", "valid-now")
    assert closte_sandbox.tls.addresses == ("127.0.0.1", info["network_ip"])
    for address in closte_sandbox.tls.addresses:
        context = ssl.create_default_context(cafile=info["ca_bundle"])
        _, writer = await asyncio.open_connection(
            address, info["tls_port"], ssl=context, server_hostname="shop.example.com"
        )
        assert writer.get_extra_info("peername")[0] == address
        writer.close()


async def test_network_ip_outside_loopback_is_not_bound() -> None:
    async with Sandbox.running(network_ip="192.0.2.10") as sb:
        assert sb.tls.addresses == ("127.0.0.1",)
        assert sb.info()["network_ip"] == "192.0.2.10"


async def test_network_host_resolves_to_the_network_ip(closte_sandbox: Sandbox) -> None:
    address = closte_sandbox.info()["dns"]
    assert await resolve_a(address, "network.sandbox.test") == [closte_sandbox.network_ip]


async def test_alias_added_through_the_api_gets_a_certificate_but_no_dns(
    closte_sandbox: Sandbox,
) -> None:
    info = closte_sandbox.info()
    answer = await closte_call(closte_sandbox, "/adddomainalias", domain="shop.example.com")
    assert answer.get("success") is True
    names = await tls_names(info["tls_port"], info["ca_bundle"], "shop.example.com")
    assert names == ["shop.example.com"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolve_a(info["dns"], "shop.example.com")


async def test_dns_control_over_http(closte_sandbox: Sandbox) -> None:
    info = closte_sandbox.info()
    response = await control(
        closte_sandbox, "dns", {"name": "shop.example.com", "cname": "network.sandbox.test"}
    )
    assert response.status_code == 200
    assert response.json()["record"]["cname"] == "network.sandbox.test"
    assert await resolve_a(info["dns"], "shop.example.com") == ["127.0.0.2"]

    response = await control(
        closte_sandbox, "dns", {"name": "shop.example.com", "rcode": "NXDOMAIN"}
    )
    assert response.status_code == 200
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolve_a(info["dns"], "shop.example.com")

    listing = (await control(closte_sandbox, "dns", {})).json()
    assert listing["records"]["network.sandbox.test"]["a"] == ["127.0.0.2"]


async def test_bad_dns_control_is_a_400_naming_the_field(closte_sandbox: Sandbox) -> None:
    response = await control(closte_sandbox, "dns", {"name": "a.com", "a": ["not-an-ip"]})
    assert response.status_code == 400
    assert "a.com: 'a' item 'not-an-ip' is not an IPv4 address" in response.json()["error"]
    assert closte_sandbox.dns.get("a.com") is None


async def test_certs_control_over_http(closte_sandbox: Sandbox) -> None:
    info = closte_sandbox.info()
    response = await control(
        closte_sandbox, "certs", {"name": "old.example.com", "mode": "expired"}
    )
    assert response.status_code == 200
    assert response.json()["serving"] == "expired"
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        await tls_names(info["tls_port"], info["ca_bundle"], "old.example.com")
    assert caught.value.verify_code == 10

    response = await control(closte_sandbox, "certs", {"name": "old.example.com", "mode": "nope"})
    assert response.status_code == 400
    assert "unknown certificate mode 'nope'" in response.json()["error"]
    listing = (await control(closte_sandbox, "certs", {})).json()
    assert listing["modes"] == {"old.example.com": "expired"}


async def test_certificate_waits_for_the_delay_on_the_sandbox_clock() -> None:
    async with Sandbox.running(["key-one", "key-two"], cert_delay_s=600) as sb:
        info = sb.info()
        assert info["api_key"] == "key-one"
        answer = await closte_call(sb, "/adddomainalias", domain="*.example.net", wildcard="1")
        assert answer.get("success") is True
        with pytest.raises(ssl.SSLCertVerificationError):
            await tls_names(info["tls_port"], info["ca_bundle"], "blog.example.net")
        sb.clock.advance(600)
        names = await tls_names(info["tls_port"], info["ca_bundle"], "blog.example.net")
        assert names == ["*.example.net"]
        answer = await closte_call(sb, "/deletedomainalias", domain="*.example.net", wildcard="1")
        assert answer.get("success") is True
        with pytest.raises(ssl.SSLCertVerificationError):
            await tls_names(info["tls_port"], info["ca_bundle"], "blog.example.net")


async def test_leaving_closes_the_ports_and_removes_the_ca_folder() -> None:
    async with Sandbox.running() as sb:
        info = sb.info()
    assert not await asyncio.to_thread(Path(info["ca_bundle"]).exists)
    for address in ("127.0.0.1", info["network_ip"]):
        with pytest.raises(OSError):
            await asyncio.open_connection(address, info["tls_port"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_keys": []}, "api_keys: give at least one"),
        ({"api_keys": [""]}, "api_keys: give at least one"),
        ({"network_ip": "::1"}, "network_ip: '::1' is not an IPv4 address"),
        ({"cert_delay_s": -1}, "cert_delay_s must be 0 or more"),
    ],
)
async def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        async with Sandbox.running(**kwargs):
            pass


# -- the command ----------------------------------------------------------------------------


@pytest.fixture
async def sandbox_process() -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "sandbox",
        "--json",
        "--api-key",
        "cli-key",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_command_prints_one_json_line_serves_and_stops_on_sigterm(
    sandbox_process: asyncio.subprocess.Process,
) -> None:
    assert sandbox_process.stdout is not None
    line = await asyncio.wait_for(sandbox_process.stdout.readline(), timeout=15)
    info = json.loads(line)
    assert set(info) == INFO_KEYS
    assert info["api_key"] == "cli-key"

    assert await resolve_a(info["dns"], "network.sandbox.test") == [info["network_ip"]]
    async with httpx.AsyncClient(base_url=info["api"]) as client:
        response = await client.post(
            "/_sandbox/certs", json={"name": "shop.example.com", "mode": "valid-now"}
        )
    assert response.status_code == 200
    names = await tls_names(info["tls_port"], info["ca_bundle"], "shop.example.com")
    assert names == ["shop.example.com"]

    sandbox_process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(sandbox_process.wait(), timeout=15) == 0
    assert await sandbox_process.stdout.read() == b""  # nothing after the one line
    assert not await asyncio.to_thread(Path(info["ca_bundle"]).exists)


async def test_command_readable_output_and_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "sandbox",
        "--cert-delay",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = [await asyncio.wait_for(process.stdout.readline(), timeout=15) for _ in range(7)]
    text = b"".join(lines).decode()
    assert "API key" in text and "CA bundle" in text and "network.sandbox.test" in text
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), timeout=15) == 0


async def test_command_refuses_a_bad_port() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "sandbox",
        "--port-dns",
        "70000",
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 2
    assert b"--port-dns: port 70000 is outside 0..65535" in stderr
