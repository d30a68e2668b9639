"""The TLS stage check: real handshakes with SNI against the sandbox's TLS edge."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from checks_fixtures import assert_known_hint, dns_checker, sandbox_settings

from closte_sync.daemon.checks import TlsChecker, expiry_warning
from closte_sync.daemon.checks.certificates import covers
from closte_sync.daemon.checks.probe import PROBE_PREFIX
from closte_sync.sandbox.ca import MISMATCH_NAME
from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

DELAY_S = 300.0  # only clock.advance() gets past it
DAY_S = 86400.0


@pytest.fixture
def closte_sandbox_options() -> dict[str, Any]:
    return {"cert_delay_s": DELAY_S}


def checker(sb: Sandbox, **options: Any) -> TlsChecker:
    return TlsChecker(sandbox_settings(sb), timeout_s=5.0, **options)


async def test_valid_after_the_certificate_delay(closte_sandbox: Sandbox) -> None:
    sb = closte_sandbox
    sb.state.add_alias(sb.api_key, "shop.example.com", wildcard=False)
    sb.dns.set_a("shop.example.com", [sb.network_ip])
    dns = await (await dns_checker(sb)).check("shop.example.com")
    assert dns.ok and dns.addresses == ("127.0.0.2",)

    before = await checker(sb).check("shop.example.com", dns.addresses)
    assert not before.ok and not before.inconclusive
    assert before.hint_id == "tls-not-issued"
    assert "issued by an untrusted CA (shop.example.com)" in before.summary
    assert before.advice is not None and "5-10 minutes" in before.advice
    assert before.details["address"] == "127.0.0.2"
    assert before.details["certificate"]["self_signed"] is True

    sb.clock.advance(DELAY_S)
    after = await checker(sb).check("shop.example.com", dns.addresses)
    assert after.ok, after.summary
    assert after.hint_id is None and after.advice is None
    assert after.names == ("shop.example.com",)
    assert after.issuer == "closte-sync sandbox root CA"
    assert after.not_after is not None and after.not_after - time.time() > 80 * DAY_S
    assert after.details["tried"] == [{"address": "127.0.0.2", "error": None}]
    json.dumps(after.to_json())


async def test_expired(closte_sandbox: Sandbox) -> None:
    closte_sandbox.tls.set_mode("old.example.com", "expired")
    result = await checker(closte_sandbox).check("old.example.com", ["127.0.0.2"])
    assert not result.ok and result.hint_id == "tls-expired"
    assert result.not_after is not None and result.not_after < time.time()
    assert "expired on" in result.summary
    assert result.details["verify_error"]["code"] == 10
    assert expiry_warning(result, time.time()) is not None


async def test_expiring_is_valid_with_a_warning(closte_sandbox: Sandbox) -> None:
    closte_sandbox.tls.set_mode("soon.example.com", "expiring")
    result = await checker(closte_sandbox).check("soon.example.com", ["127.0.0.2"])
    assert result.ok
    warning = expiry_warning(result, time.time())
    assert warning is not None
    assert warning.startswith("the certificate for soon.example.com expires on")
    assert "(in 3 days)" in warning
    assert expiry_warning(result, time.time(), days=1) is None


async def test_valid_certificate_has_no_expiry_warning(closte_sandbox: Sandbox) -> None:
    closte_sandbox.tls.set_mode("fine.example.com", "valid-now")
    result = await checker(closte_sandbox).check("fine.example.com", ["127.0.0.2"])
    assert result.ok and expiry_warning(result, time.time()) is None
    later = time.time() + 85 * DAY_S
    assert expiry_warning(result, later) is not None


async def test_our_clock_past_the_end_date_is_expired(closte_sandbox: Sandbox) -> None:
    closte_sandbox.tls.set_mode("fine.example.com", "valid-now")
    late = checker(closte_sandbox, now=lambda: time.time() + 400 * DAY_S)
    result = await late.check("fine.example.com", ["127.0.0.2"])
    assert not result.ok and result.hint_id == "tls-expired"


async def test_mismatch_names_whose_certificate_it_is(closte_sandbox: Sandbox) -> None:
    closte_sandbox.tls.set_mode("shop.example.com", "mismatch")
    result = await checker(closte_sandbox).check("shop.example.com", ["127.0.0.2"])
    assert not result.ok and result.hint_id == "tls-mismatch"
    assert result.names == (MISMATCH_NAME,)
    assert result.summary == (
        f"shop.example.com: the certificate is for {MISMATCH_NAME}, not shop.example.com"
    )
    assert result.details["verify_error"]["code"] == 62


async def test_wildcard_alias_is_checked_through_a_random_label(closte_sandbox: Sandbox) -> None:
    sb = closte_sandbox
    sb.state.add_alias(sb.api_key, "*.example.net", wildcard=True)
    sb.clock.advance(DELAY_S)
    result = await checker(sb).check("*.example.net", ["127.0.0.2"])
    assert result.ok, result.summary
    assert result.names == ("*.example.net",)
    assert result.asked is not None and result.asked.startswith(PROBE_PREFIX)


@pytest.fixture
def closed_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_connection_refused_is_a_failure_with_advice(
    closte_sandbox: Sandbox, closed_tcp_port: int
) -> None:
    settings = replace(sandbox_settings(closte_sandbox), tls_port=closed_tcp_port)
    result = await TlsChecker(settings, timeout_s=5).check("shop.example.com", ["127.0.0.1"])
    assert not result.ok and not result.inconclusive
    assert result.hint_id == "tls-unreachable"
    assert result.summary.endswith("connection refused")
    assert result.advice is not None
    assert f"nothing accepts connections on port {closed_tcp_port}" in result.advice


async def test_next_address_is_tried_after_a_refused_one(closte_sandbox: Sandbox) -> None:
    closte_sandbox.tls.set_mode("shop.example.com", "valid-now")
    # 127.0.0.3 is loopback too, but the edge does not listen there.
    result = await checker(closte_sandbox).check("shop.example.com", ["127.0.0.3", "127.0.0.2"])
    assert result.ok
    assert [t["address"] for t in result.details["tried"]] == ["127.0.0.3", "127.0.0.2"]
    assert result.details["tried"][0]["error"] == "connection refused"


@pytest.fixture
async def mute_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word (a firewall that swallows TLS)."""
    release = asyncio.Event()

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_silent_port_times_out_as_a_failure(
    closte_sandbox: Sandbox, mute_server: int
) -> None:
    settings = replace(sandbox_settings(closte_sandbox), tls_port=mute_server)
    result = await TlsChecker(settings, timeout_s=0.3).check("shop.example.com", ["127.0.0.1"])
    assert not result.ok and result.hint_id == "tls-unreachable"
    assert "no answer within 0.3 s" in result.summary


async def test_no_address_is_inconclusive(closte_sandbox: Sandbox) -> None:
    result = await checker(closte_sandbox).check("shop.example.com", [])
    assert result.inconclusive and not result.ok


async def test_every_failure_names_a_catalogued_hint(closte_sandbox: Sandbox) -> None:
    tls = closte_sandbox.tls
    for name, mode in [("a.example.com", "expired"), ("b.example.com", "mismatch")]:
        tls.set_mode(name, mode)
    check = checker(closte_sandbox)
    names = ["a.example.com", "b.example.com", "c.example.com"]
    results = await asyncio.gather(*(check.check(n, ["127.0.0.2"]) for n in names))
    assert [r.hint_id for r in results] == ["tls-expired", "tls-mismatch", "tls-not-issued"]
    for result in results:
        assert_known_hint(result.hint_id)


def test_missing_ca_bundle_is_refused_naming_the_setting(tmp_path: Path) -> None:
    from closte_sync.daemon.settings import ChecksSettings

    with pytest.raises(ValueError, match=r"\[checks\] ca_bundle: cannot load"):
        TlsChecker(ChecksSettings(ca_bundle=tmp_path / "missing.pem"))


@pytest.mark.parametrize(
    ("names", "host", "expected"),
    [
        (("shop.example.com",), "shop.example.com", True),
        (("shop.example.com",), "SHOP.example.com.", True),
        (("*.example.com",), "blog.example.com", True),
        (("*.example.com",), "example.com", False),
        (("*.example.com",), "a.blog.example.com", False),
        (("other.com", "*.example.com"), "x.example.com", True),
        (("other.com",), "shop.example.com", False),
    ],
)
def test_names_cover_hosts_as_the_plugin_does(
    names: tuple[str, ...], host: str, expected: bool
) -> None:
    assert covers(names, host) is expected


async def test_a_mapping_that_is_no_domain_name_is_not_connected_to(
    closte_sandbox: Sandbox,
) -> None:
    result = await checker(closte_sandbox).check("https://shop.example.com/", ["127.0.0.2"])
    assert (result.kind, result.ok, result.hint_id) == ("tls", False, "domain-invalid")
    assert result.advice is not None and result.advice.startswith("fix the mapping")
    assert result.details == {"error": result.summary.removeprefix("not a domain name: ")}
