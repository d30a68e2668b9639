"""The sandbox's Closte API, spoken to with a plain HTTP client over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from closte_fixtures import API_KEY, OTHER_KEY, sandbox_api, wait_until

from closte_sync.sandbox.api import SandboxApi
from closte_sync.sandbox.faults import FaultKind, Faults, FaultsError
from closte_sync.sandbox.state import SandboxState
from closte_sync.shared.secret import mask

__all__ = ["sandbox_api"]  # the fixture, imported for pytest


@pytest.fixture
async def http(sandbox_api: SandboxApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_api.url, timeout=10) as client:
        yield client


async def _add(http: httpx.AsyncClient, **fields: str) -> tuple[int, dict[str, Any]]:
    response = await http.post("/adddomainalias", data={"apikey": API_KEY, **fields})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("domain", "wildcard"),
    [("*.a.example.com", "1"), ("*.b.example.com", "true"), ("*.c.example.com", "TRUE")],
)
async def test_wildcard_spellings_that_mean_yes(
    http: httpx.AsyncClient, sandbox_api: SandboxApi, domain: str, wildcard: str
) -> None:
    status, body = await _add(http, domain=domain, wildcard=wildcard)
    assert (status, body["success"]) == (200, True)
    assert sandbox_api.state.held(API_KEY)[domain].wildcard is True


@pytest.mark.parametrize("wildcard", ["0", "false", "", None])
async def test_wildcard_spellings_that_mean_no(
    http: httpx.AsyncClient, sandbox_api: SandboxApi, wildcard: str | None
) -> None:
    fields = {"domain": "plain.example.com"}
    if wildcard is not None:
        fields["wildcard"] = wildcard
    status, body = await _add(http, **fields)
    assert (status, body) == (200, {"success": True, "message": "Domain alias added"})
    assert sandbox_api.state.held(API_KEY)["plain.example.com"].wildcard is False


@pytest.mark.parametrize(
    ("domain", "wildcard", "error"),
    [
        ("plain.example.com", "1", "Invalid or empty domain: plain.example.com"),
        ("*.x.example.com", "0", "Invalid or empty domain: *.x.example.com"),
        ("not a domain", "0", "Invalid or empty domain: not a domain"),
        ("", "0", "Invalid or empty domain: "),
        ("a.example.com", "yes", "Invalid wildcard value: yes"),
    ],
)
async def test_bad_domains_and_flags_are_refused(
    http: httpx.AsyncClient, sandbox_api: SandboxApi, domain: str, wildcard: str, error: str
) -> None:
    status, body = await _add(http, domain=domain, wildcard=wildcard)
    assert (status, body) == (200, {"error": error})
    assert sandbox_api.state.held(API_KEY) == {}


async def test_unknown_or_missing_key_is_refused(http: httpx.AsyncClient) -> None:
    wrong = await http.post("/adddomainalias", data={"apikey": "nope", "domain": "a.example.com"})
    missing = await http.get("/getdomains")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid API key"})
    assert missing.status_code == 401


async def test_aliases_are_kept_per_key(http: httpx.AsyncClient, sandbox_api: SandboxApi) -> None:
    await _add(http, domain="mine.example.com", wildcard="0")
    other = await http.post(
        "/adddomainalias", data={"apikey": OTHER_KEY, "domain": "mine.example.com"}
    )
    again = await _add(http, domain="mine.example.com", wildcard="0")
    assert other.json() == {"error": "Domain is already in use by another application"}
    assert again[1] == {"error": "Domain alias already exists"}
    listing = (await http.get("/getdomains", params={"apikey": OTHER_KEY})).json()
    assert listing == {"success": True, "domains": []}
    gone = await http.post(
        "/api/client/deletedomainalias", data={"apikey": API_KEY, "domain": "mine.example.com"}
    )
    missing = await http.post(
        "/deletedomainalias", data={"apikey": API_KEY, "domain": "mine.example.com"}
    )
    assert gone.json()["success"] is True
    assert missing.json() == {"error": "Domain alias not found"}


async def test_sandbox_views_mask_the_key(http: httpx.AsyncClient, sandbox_api: SandboxApi) -> None:
    await _add(http, domain="v.example.com", wildcard="0")
    await http.get("/getdomains", params={"apikey": API_KEY})
    aliases = await http.get("/_sandbox/aliases")
    requests = await http.get("/_sandbox/requests")
    assert API_KEY not in aliases.text and API_KEY not in requests.text
    held = aliases.json()["aliases"][mask(API_KEY)]
    assert [a["domain"] for a in held] == ["v.example.com"]
    logged = requests.json()["requests"]
    assert [(r["method"], r["path"], r["outcome"]) for r in logged] == [
        ("POST", "/adddomainalias", "ok"),
        ("GET", "/getdomains", "ok"),
    ]
    assert all(r["start"] <= r["end"] and r["fields"]["apikey"] == mask(API_KEY) for r in logged)
    assert all(r["time"] == r["start"] for r in logged)
    # The state's shared log got the same requests.
    assert [r.path for r in sandbox_api.state.requests] == ["/adddomainalias", "/getdomains"]


async def test_faults_are_set_at_run_time(http: httpx.AsyncClient, sandbox_api: SandboxApi) -> None:
    answer = await http.post(
        "/_sandbox/faults",
        json={"rates": {"server_error": 0.25}, "domains": {"z.example.com": "html"}},
    )
    assert answer.status_code == 200
    assert sandbox_api.faults.rates == {FaultKind.SERVER_ERROR: 0.25}
    shown = (await http.get("/_sandbox/faults")).json()
    assert shown["domains"] == {"z.example.com": {"kind": "html", "times": None}}
    page = await http.post("/adddomainalias", data={"apikey": API_KEY, "domain": "z.example.com"})
    assert page.status_code == 502 and "<html>" in page.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rates": {"server_error": 2}}, "rates.server_error"),
        ({"rates": {"gremlins": 0.1}}, "rates.gremlins"),
        ({"latency_ms": -5}, "latency_ms"),
        ({"domains": {"a.example.com": {"kind": "reset", "times": -1}}}, "times"),
        ({"speed": 1}, "speed"),
        ({"list_style": "xml"}, "list_style"),
    ],
)
async def test_bad_fault_settings_name_the_field(
    http: httpx.AsyncClient, sandbox_api: SandboxApi, body: dict[str, Any], field: str
) -> None:
    before = sandbox_api.faults.to_json()
    answer = await http.post("/_sandbox/faults", json=body)
    assert answer.status_code == 400 and field in answer.json()["error"]
    assert sandbox_api.faults.to_json() == before


async def test_latency_delays_every_answer(
    http: httpx.AsyncClient, sandbox_api: SandboxApi
) -> None:
    sandbox_api.faults.update({"latency_ms": 120, "jitter_ms": 30})
    started = time.monotonic()
    await http.get("/getdomains", params={"apikey": API_KEY})
    assert time.monotonic() - started >= 0.12


async def test_reset_aborts_the_connection(
    http: httpx.AsyncClient, sandbox_api: SandboxApi
) -> None:
    sandbox_api.faults.update({"queue": ["reset"]})
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/adddomainalias", data={"apikey": API_KEY, "domain": "r.example.com"})
    assert sandbox_api.log[-1].outcome == "reset" and sandbox_api.log[-1].status == 0


async def test_held_request_is_released_when_the_sandbox_stops() -> None:
    api = SandboxApi(SandboxState(api_keys={API_KEY}), Faults(queue=["timeout"], hold_s=60))
    await api.start()
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        pending = asyncio.create_task(client.get("/getdomains", params={"apikey": API_KEY}))
        await wait_until(lambda: not api.faults.queue)  # the request is being held
        async with asyncio.timeout(10):
            await api.stop()
            response = await pending
    assert response.status_code == 504


def test_same_seed_same_faults() -> None:
    def draws(seed: int) -> list[FaultKind | None]:
        faults = Faults(seed=seed, rates={"server_error": 0.3, "reset": 0.2})
        return [faults.choose("a.example.com") for _ in range(200)]

    first = draws(7)
    assert first == draws(7)
    share = sum(kind is not None for kind in first) / len(first)
    assert 0.35 < share < 0.65  # about half the draws fail


def test_fault_precedence_queue_then_domain_then_rates() -> None:
    faults = Faults(
        queue=["empty"], domains={"d.example.com": {"kind": "html", "times": 1}}, seed=3
    )
    assert faults.choose("d.example.com") is FaultKind.EMPTY
    assert faults.choose("d.example.com") is FaultKind.HTML
    assert faults.choose("d.example.com") is None


def test_bad_faults_at_construction_raise() -> None:
    with pytest.raises(FaultsError, match="rates"):
        Faults(rates={"server_error": 0.7, "reset": 0.7})


async def test_control_handlers_get_their_own_endpoint() -> None:
    seen: list[dict[str, Any]] = []

    async def dns(body: dict[str, Any]) -> dict[str, Any]:
        if "name" not in body:
            raise ValueError("field 'name' is required")
        seen.append(body)
        return {"ok": True, "records": 1}

    api = SandboxApi(SandboxState(api_keys={API_KEY}), control={"dns": dns})
    await api.start()
    try:
        async with httpx.AsyncClient(base_url=api.url) as client:
            good = await client.post("/_sandbox/dns", json={"name": "a.example.com"})
            bad = await client.post("/_sandbox/dns", json={})
            unknown = await client.post("/_sandbox/nothing", json={})
    finally:
        await api.stop()
    assert good.json() == {"ok": True, "records": 1} and seen == [{"name": "a.example.com"}]
    assert bad.status_code == 400 and "name" in bad.json()["error"]
    assert unknown.status_code == 404


def test_reserved_control_names_are_refused() -> None:
    async def handler(body: dict[str, Any]) -> dict[str, Any]:
        return body

    with pytest.raises(ValueError, match="faults"):
        SandboxApi(SandboxState(api_keys=set()), control={"faults": handler})


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = SandboxApi(SandboxState(api_keys=set())).url


@pytest.mark.parametrize(
    ("style", "items"),
    [
        (
            "objects",
            [
                {"domain": "*.a.example.com", "wildcard": True},
                {"domain": "b.example.com", "wildcard": False},
            ],
        ),
        ("names", ["*.a.example.com", "b.example.com"]),
        (
            "flagged",
            [
                {"domain": "a.example.com", "wildcard": 1},
                {"domain": "b.example.com", "wildcard": 0},
            ],
        ),
        (
            "garbled",
            [{"host": "*.a.example.com", "ssl": True}, {"host": "b.example.com", "ssl": True}],
        ),
    ],
)
async def test_list_style_is_set_at_run_time(
    http: httpx.AsyncClient, sandbox_api: SandboxApi, style: str, items: list[Any]
) -> None:
    await _add(http, domain="*.a.example.com", wildcard="1")
    await _add(http, domain="b.example.com", wildcard="0")
    answer = await http.post("/_sandbox/faults", json={"list_style": style})
    assert answer.status_code == 200 and answer.json()["list_style"] == style
    listing = await http.get("/getdomains", params={"apikey": API_KEY})
    assert listing.json() == {"success": True, "domains": items}


async def test_list_style_is_set_at_start() -> None:
    api = SandboxApi(SandboxState(api_keys={API_KEY}), Faults(list_style="flagged"))
    await api.start()
    try:
        api.state.add_alias(API_KEY, "*.c.example.com", True)
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
            listing = await http.get("/getdomains", params={"apikey": API_KEY})
    finally:
        await api.stop()
    assert listing.json()["domains"] == [{"domain": "c.example.com", "wildcard": 1}]


@pytest.mark.parametrize(
    ("fault", "status", "html"),
    [
        ("html_401", 401, True),
        ("html_403", 403, True),
        ("html_404", 404, True),
        ("not_found_404", 404, False),
        ("app_not_found", 200, False),
        ("endpoint_not_found", 200, False),
        ("redirect", 301, False),
    ],
)
async def test_answers_that_are_not_about_the_domain(
    http: httpx.AsyncClient, sandbox_api: SandboxApi, fault: str, status: int, html: bool
) -> None:
    sandbox_api.faults.update({"queue": [fault]})
    answer = await http.post(
        "/deletedomainalias", data={"apikey": API_KEY, "domain": "a.example.com"}
    )
    assert answer.status_code == status
    assert ("<html>" in answer.text) is html
    assert sandbox_api.log[-1].outcome == fault
