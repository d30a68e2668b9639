"""The Closte client against the sandbox API, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from email.utils import formatdate

import pytest
from closte_fixtures import (
    API_KEY,
    OTHER_KEY,
    RecordingSleep,
    fast_settings,
    max_in_window,
    max_overlap,
    sandbox_api,
    wait_until,
)

from closte_sync.daemon.closte import EVENT_KIND, ClosteClient, MissingApiKeyError, ResultKind
from closte_sync.daemon.closte.client import proxy_for
from closte_sync.daemon.closte.listing import UnreadableItemError, read_listing
from closte_sync.daemon.closte.results import (
    classify_message,
    classify_response,
    parse_retry_after,
)
from closte_sync.daemon.events import Level, MemorySink
from closte_sync.daemon.settings import ClosteSettings
from closte_sync.sandbox.api import SandboxApi
from closte_sync.shared.hints import HINTS
from closte_sync.shared.secret import Secret

__all__ = ["sandbox_api"]  # the fixture, imported for pytest


def _client(api: SandboxApi, **changes: object) -> tuple[ClosteClient, RecordingSleep]:
    sleep = RecordingSleep()
    return ClosteClient(fast_settings(api, **changes), sleep=sleep), sleep


# -- the wire form ---------------------------------------------------------------------------


async def test_add_sends_the_plugins_fields_in_order(sandbox_api: SandboxApi) -> None:
    client, _ = _client(sandbox_api)
    async with client:
        plain = await client.add_alias("Example.COM")
        wild = await client.add_alias("*.shop.example.org")
    assert (plain.kind, wild.kind) == (ResultKind.DONE, ResultKind.DONE)
    first, second = sandbox_api.log
    assert first.path == "/adddomainalias" and first.method == "POST"
    assert list(first.fields) == ["apikey", "domain", "wildcard"]
    assert first.fields["domain"] == "example.com" and first.fields["wildcard"] == "0"
    assert second.fields["domain"] == "*.shop.example.org" and second.fields["wildcard"] == "1"
    assert first.fields["apikey"] == Secret(API_KEY).masked
    assert set(sandbox_api.state.held(API_KEY)) == {"example.com", "*.shop.example.org"}


async def test_connection_test_sends_no_domain_field(sandbox_api: SandboxApi) -> None:
    client, _ = _client(sandbox_api)
    async with client:
        result = await client.test_connection()
    assert result.kind is ResultKind.DONE and result.ok
    assert "Invalid or empty domain" in (result.message or "")
    (entry,) = sandbox_api.log
    assert entry.path == "/adddomainalias"
    assert list(entry.fields) == ["apikey"]


async def test_connection_test_with_a_wrong_key_is_an_auth_failure(
    sandbox_api: SandboxApi,
) -> None:
    client, _ = _client(sandbox_api, api_key=Secret("ck_live_wrong_wrong_wrong_wrong"))
    async with client:
        result = await client.test_connection()
    assert result.kind is ResultKind.AUTH_FAILED and not result.ok
    assert result.status == 401 and result.attempts == 1
    assert result.hint is not None and result.hint.id == "closte-api-key"


# -- answers that are successes --------------------------------------------------------------


async def test_adding_twice_is_already_present(sandbox_api: SandboxApi) -> None:
    client, _ = _client(sandbox_api)
    async with client:
        await client.add_alias("a.example.com")
        again = await client.add_alias("a.example.com")
    assert again.kind is ResultKind.ALREADY_PRESENT and again.ok


async def test_remove_then_remove_again_is_already_absent(sandbox_api: SandboxApi) -> None:
    client, _ = _client(sandbox_api)
    async with client:
        await client.add_alias("gone.example.com")
        first = await client.remove_alias("gone.example.com")
        second = await client.remove_alias("gone.example.com")
    assert first.kind is ResultKind.DONE
    assert second.kind is ResultKind.ALREADY_ABSENT and second.ok
    assert sandbox_api.state.held(API_KEY) == {}
    assert [e.path for e in sandbox_api.log][-1] == "/deletedomainalias"


@pytest.mark.parametrize("style", ["objects", "names", "flagged"])
async def test_list_reads_every_item_shape(sandbox_api: SandboxApi, style: str) -> None:
    sandbox_api.faults.update({"list_style": style})
    client, _ = _client(sandbox_api)
    async with client:
        await client.add_alias("b.example.com")
        await client.add_alias("*.a.example.com")
        listing = await client.list_aliases()
    assert listing.kind is ResultKind.DONE
    assert listing.domains == ("*.a.example.com", "b.example.com")
    assert sandbox_api.log[-1].method == "GET" and sandbox_api.log[-1].path == "/getdomains"


# -- answers that are failures ---------------------------------------------------------------


async def test_invalid_domain_is_refused_before_any_request(sandbox_api: SandboxApi) -> None:
    client, _ = _client(sandbox_api)
    async with client:
        result = await client.add_alias("https://example.com/")
    assert result.kind is ResultKind.INVALID_DOMAIN and result.attempts == 0
    assert "URL" in (result.message or "")
    assert sandbox_api.log == []


async def test_domain_held_by_another_application_is_taken(sandbox_api: SandboxApi) -> None:
    sandbox_api.state.add_alias(OTHER_KEY, "taken.example.com", False)
    client, _ = _client(sandbox_api)
    async with client:
        result = await client.add_alias("taken.example.com")
    assert result.kind is ResultKind.DOMAIN_TAKEN and not result.ok
    assert result.hint is not None and result.hint.id == "closte-domain-taken"


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("server_error", ResultKind.SERVER_ERROR),
        ("rate_limit", ResultKind.RATE_LIMITED),
        ("timeout", ResultKind.TIMEOUT),
        ("reset", ResultKind.CONNECTION_FAILED),
        ("empty", ResultKind.EMPTY_BODY),
        ("html", ResultKind.HTML_PAGE),
        ("malformed", ResultKind.MALFORMED_JSON),
        ("permission", ResultKind.PERMISSION_DENIED),
    ],
)
async def test_each_fault_is_classified_and_retried_only_when_transient(
    sandbox_api: SandboxApi, fault: str, kind: ResultKind
) -> None:
    sandbox_api.faults.update({"domains": {"f.example.com": fault}, "retry_after": "0"})
    client, sleep = _client(sandbox_api, retry_budget=2, timeout_s=0.3)
    async with client:
        result = await client.add_alias("f.example.com")
    assert result.kind is kind
    expected_attempts = 3 if kind.is_transient else 1
    assert result.attempts == expected_attempts
    # A held request is logged when the sandbox notices the client left.
    await wait_until(lambda: len(sandbox_api.log) == expected_attempts)
    assert len(sleep.delays) == expected_attempts - 1
    assert result.hint is not None and result.hint.id in HINTS


async def test_connection_refused_is_a_connection_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now.
    settings = ClosteSettings(
        api_key=Secret(API_KEY), base_url=f"http://127.0.0.1:{port}", retry_budget=1
    )
    sleep = RecordingSleep()
    async with ClosteClient(settings, sleep=sleep) as client:
        result = await client.add_alias("a.example.com")
    assert result.kind is ResultKind.CONNECTION_FAILED and result.attempts == 2
    assert result.hint is not None and result.hint.id == "network-unreachable"


# -- retries ---------------------------------------------------------------------------------


async def test_transient_failures_then_success(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"domains": {"d.example.com": {"kind": "server_error", "times": 2}}})
    client, sleep = _client(sandbox_api)
    async with client:
        result = await client.add_alias("d.example.com")
    assert result.kind is ResultKind.DONE and result.attempts == 3
    assert [e.outcome for e in sandbox_api.log] == ["server_error", "server_error", "ok"]
    assert len(sleep.delays) == 2


async def test_budget_exhausted_with_full_jitter_backoff(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"domains": {"d.example.com": "empty"}})
    ceilings: list[float] = []

    def top_of_range(low: float, high: float) -> float:
        ceilings.append(high)
        return high

    sleep = RecordingSleep()
    settings = fast_settings(sandbox_api, retry_budget=4, retry_base_s=0.001, retry_max_s=0.003)
    async with ClosteClient(settings, sleep=sleep, uniform=top_of_range) as client:
        result = await client.add_alias("d.example.com")
    assert result.kind is ResultKind.EMPTY_BODY and result.attempts == 5
    # min(max, base * 2^n) for n = 0, 1, 2, 3
    assert ceilings == pytest.approx([0.001, 0.002, 0.003, 0.003])
    assert sleep.delays == pytest.approx(ceilings)


async def test_permanent_failure_is_not_retried(sandbox_api: SandboxApi) -> None:
    client, sleep = _client(sandbox_api, api_key=Secret("ck_live_not_a_known_key_at_all"))
    async with client:
        result = await client.add_alias("a.example.com")
    assert result.kind is ResultKind.AUTH_FAILED and result.attempts == 1
    assert sleep.delays == [] and len(sandbox_api.log) == 1


async def test_retry_after_seconds_is_a_floor(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"queue": ["rate_limit"], "retry_after": "2"})
    client, sleep = _client(sandbox_api, retry_max_s=10.0)
    async with client:
        result = await client.add_alias("r.example.com")
    assert result.kind is ResultKind.DONE and result.attempts == 2
    assert sleep.delays[0] >= 2.0


async def test_retry_after_http_date_is_honoured(sandbox_api: SandboxApi) -> None:
    when = formatdate(time.time() + 6, usegmt=True)
    sandbox_api.faults.update({"queue": ["rate_limit"], "retry_after": when})
    client, sleep = _client(sandbox_api, retry_max_s=30.0)
    async with client:
        result = await client.add_alias("r.example.com")
    assert result.kind is ResultKind.DONE
    assert 4.0 <= sleep.delays[0] <= 7.0


async def test_retry_after_beyond_the_maximum_is_handed_back(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"queue": ["rate_limit"], "retry_after": "3600"})
    client, sleep = _client(sandbox_api, retry_max_s=60.0)
    async with client:
        result = await client.add_alias("r.example.com")
    assert result.kind is ResultKind.RATE_LIMITED and result.retry_after == 3600.0
    assert result.attempts == 1 and sleep.delays == []


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("message", "operation", "kind"),
    [
        ("Domain alias already exists", "add", ResultKind.ALREADY_PRESENT),
        ("This domain was already added", "add", ResultKind.ALREADY_PRESENT),
        ("Alias already removed", "remove", ResultKind.ALREADY_ABSENT),
        ("Domain alias not found", "remove", ResultKind.ALREADY_ABSENT),
        ("Domain does not exist", "remove", ResultKind.ALREADY_ABSENT),
        ("x.example.com was not found", "remove", ResultKind.ALREADY_ABSENT),
        ("No such alias: x.example.com", "remove", ResultKind.ALREADY_ABSENT),
        ("Not found", "remove", ResultKind.REJECTED),
        ("Domain alias not found", "add", ResultKind.REJECTED),
        ("Application not found", "remove", ResultKind.AUTH_FAILED),
        ("Application not found for domain x.example.com", "remove", ResultKind.AUTH_FAILED),
        ("API endpoint not found", "remove", ResultKind.ENDPOINT_NOT_FOUND),
        ("Route does not exist", "add", ResultKind.ENDPOINT_NOT_FOUND),
        ("Domain is already in use by another application", "add", ResultKind.DOMAIN_TAKEN),
        ("Invalid or empty domain: apikey.example.com", "add", ResultKind.INVALID_DOMAIN),
        ("Invalid API key", "add", ResultKind.AUTH_FAILED),
        ("Invalid API key for domain x.example.com", "add", ResultKind.AUTH_FAILED),
        ("Forbidden", "add", ResultKind.AUTH_FAILED),
        ("Unauthorized", "remove", ResultKind.AUTH_FAILED),
        ("Authentication failed", "list", ResultKind.AUTH_FAILED),
        ("You do not have permission to manage domains", "add", ResultKind.PERMISSION_DENIED),
        ("Something odd happened", "add", ResultKind.REJECTED),
    ],
)
def test_error_wording_is_matched_loosely(message: str, operation: str, kind: ResultKind) -> None:
    domain = "apikey.example.com" if "apikey" in message else "x.example.com"
    assert classify_message(message, operation, domain) is kind  # type: ignore[arg-type]


# -- limits ----------------------------------------------------------------------------------


async def test_concurrency_never_exceeds_the_setting(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"latency_ms": 40})
    client, _ = _client(sandbox_api, concurrency=3)
    async with client:
        results = await asyncio.gather(*(client.add_alias(f"c{i}.example.com") for i in range(18)))
    assert all(r.kind is ResultKind.DONE for r in results)
    peak = max_overlap([(e.start, e.end) for e in sandbox_api.log])
    assert peak == 3  # bounded, and the bound was reached


async def test_rate_limit_holds_in_every_window(sandbox_api: SandboxApi) -> None:
    rate, burst, count = 20.0, 2, 20
    settings = fast_settings(sandbox_api, concurrency=8, rate_per_second=rate)
    started = time.monotonic()
    async with ClosteClient(settings, burst=burst) as client:
        results = await asyncio.gather(
            *(client.add_alias(f"r{i}.example.com") for i in range(count))
        )
    took = time.monotonic() - started
    assert all(r.ok for r in results)
    starts = [e.start for e in sandbox_api.log]
    for window in (0.25, 0.5, 1.0):
        # +2 allows for arrivals bunching at the server when the machine stalls for a moment
        # (a client without the limit would land all 20 within a few milliseconds).
        assert max_in_window(starts, window) <= rate * window + burst + 2
    assert took >= (count - burst) / rate * 0.9


# -- secrets and events ----------------------------------------------------------------------


async def test_the_key_leaks_nowhere(
    sandbox_api: SandboxApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aiohttp", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    sink = MemorySink()
    sandbox_api.faults.update(
        {"domains": {"reset.example.com": "reset", "fail.example.com": "server_error"}}
    )
    results = []
    settings = fast_settings(sandbox_api, retry_budget=1)
    async with ClosteClient(settings, events=sink, sleep=RecordingSleep()) as client:
        results.append(await client.test_connection())
        results.append(await client.add_alias("a.example.com"))
        results.append(await client.add_alias("*.b.example.com"))
        results.append(await client.list_aliases())
        results.append(await client.remove_alias("a.example.com"))
        results.append(await client.add_alias("reset.example.com"))
        results.append(await client.add_alias("fail.example.com"))
        results.append(await client.add_alias("not a domain"))
        client_repr = repr(client)
    # The key did reach Closte (the test is not vacuous)...
    assert "*.b.example.com" in sandbox_api.state.held(API_KEY)
    assert any("HTTP Request: GET" in r.getMessage() for r in caplog.records)
    # ...and nothing else.
    assert API_KEY not in caplog.text
    assert all(API_KEY not in r.getMessage() for r in caplog.records)
    assert API_KEY not in client_repr and API_KEY not in repr(settings)
    for result in results:
        assert API_KEY not in repr(result) and API_KEY not in str(result.to_json())
    assert len(sink.events) == len(results)
    for event in sink.events:
        assert API_KEY not in repr(event)
    with pytest.raises(MissingApiKeyError) as raised:
        ClosteClient(ClosteSettings(api_key=None))
    assert API_KEY not in str(raised.value)


async def test_one_event_per_call_outcome(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"domains": {"no.example.com": "permission"}})
    sink = MemorySink()
    async with ClosteClient(fast_settings(sandbox_api), events=sink) as client:
        await client.add_alias("yes.example.com")
        await client.add_alias("no.example.com")
    done, denied = sink.events
    assert (done.kind, done.domain, done.level) == (EVENT_KIND, "yes.example.com", Level.INFO)
    assert done.details["result"] == "done"
    assert (denied.domain, denied.level) == ("no.example.com", Level.ERROR)
    assert denied.details["result"] == "permission-denied"
    assert denied.details["hint"] == "closte-permissions"


def test_the_proxy_comes_from_the_environment_once_per_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert proxy_for("https://app.closte.com/api/client") == "http://proxy.invalid:3128"
    assert proxy_for("http://127.0.0.1:8080/api/client") is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxy_for("https://app.closte.com/api/client") is None


def test_all_proxy_is_the_fallback_and_a_bare_host_gets_a_scheme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "proxy.invalid:8080")
    assert proxy_for("https://app.closte.com/api/client") == "http://proxy.invalid:8080"


async def test_calls_go_through_the_proxy_the_environment_names(
    sandbox_api: SandboxApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox plays the proxy: a plain-HTTP proxy receives the absolute URL and answers.
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", sandbox_api.url)
    settings = fast_settings(sandbox_api, base_url="http://closte.invalid/api/client")
    async with ClosteClient(settings, sleep=RecordingSleep()) as client:
        added = await client.add_alias("via-proxy.example.com")
        listing = await client.list_aliases()
    assert added.kind is ResultKind.DONE, added
    assert listing.domains == ("via-proxy.example.com",)
    assert [e.path for e in sandbox_api.log] == [
        "/api/client/adddomainalias",
        "/api/client/getdomains",
    ]


# -- answers that say nothing about the domain -----------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("html_401", ResultKind.AUTH_FAILED),
        ("html_403", ResultKind.PERMISSION_DENIED),
        ("html_404", ResultKind.ENDPOINT_NOT_FOUND),
        ("not_found_404", ResultKind.ENDPOINT_NOT_FOUND),
        ("app_not_found", ResultKind.AUTH_FAILED),
        ("endpoint_not_found", ResultKind.ENDPOINT_NOT_FOUND),
        ("redirect", ResultKind.HTTP_ERROR),
    ],
)
async def test_a_remove_is_already_absent_only_when_closte_says_so_of_the_domain(
    sandbox_api: SandboxApi, fault: str, kind: ResultKind
) -> None:
    sandbox_api.faults.update({"domains": {"a.example.com": fault}})
    client, sleep = _client(sandbox_api, retry_budget=2)
    async with client:
        result = await client.remove_alias("a.example.com")
    assert result.kind is kind and not result.ok
    assert kind.is_account_wide and not kind.is_transient and not kind.is_refusal
    assert not result.refused and result.attempts == 1 and sleep.delays == []
    assert result.hint is not None and result.hint.id in HINTS


async def test_a_wrong_base_url_is_an_endpoint_error_not_already_absent(
    sandbox_api: SandboxApi,
) -> None:
    client, _ = _client(sandbox_api, base_url=sandbox_api.url + "/no/such/api")
    async with client:
        removed = await client.remove_alias("a.example.com")
        listed = await client.list_aliases()
    assert removed.kind is ResultKind.ENDPOINT_NOT_FOUND and removed.status == 404
    assert "base_url" in (removed.message or "")
    assert listed.kind is ResultKind.ENDPOINT_NOT_FOUND and listed.domains == ()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, ResultKind.HTML_PAGE),
        (401, ResultKind.AUTH_FAILED),
        (403, ResultKind.PERMISSION_DENIED),
        (404, ResultKind.ENDPOINT_NOT_FOUND),
        (410, ResultKind.HTTP_ERROR),
        (502, ResultKind.HTML_PAGE),
    ],
)
def test_html_pages_by_status(status: int, kind: ResultKind) -> None:
    answer = classify_response(
        operation="remove",
        domain="a.example.com",
        status=status,
        content_type="text/html",
        body="<html><body>Domain alias not found</body></html>",
        retry_after_header=None,
        now=0.0,
    )
    assert answer.kind is kind
    assert answer.kind.is_transient is (kind is ResultKind.HTML_PAGE)


def test_every_kind_is_in_exactly_one_group() -> None:
    for kind in ResultKind:
        groups = [kind.is_success, kind.is_transient, kind.is_refusal, kind.is_account_wide]
        assert sum(groups) == 1, kind
        assert kind.is_success or kind.hint_id in HINTS, kind
    assert {k for k in ResultKind if k.is_refusal} == {
        ResultKind.INVALID_DOMAIN,
        ResultKind.DOMAIN_TAKEN,
        ResultKind.REJECTED,
    }


async def test_a_refusal_is_about_the_domain(sandbox_api: SandboxApi) -> None:
    sandbox_api.state.add_alias(OTHER_KEY, "taken.example.com", False)
    client, _ = _client(sandbox_api)
    async with client:
        taken = await client.add_alias("taken.example.com")
        fine = await client.add_alias("free.example.com")
    assert taken.refused and taken.kind.is_refusal and not taken.kind.is_account_wide
    assert fine.ok and not fine.refused


# -- a list read in full or not at all -------------------------------------------------------


async def test_a_garbled_list_is_a_failure_that_names_the_shape(sandbox_api: SandboxApi) -> None:
    sandbox_api.faults.update({"list_style": "garbled"})
    client, sleep = _client(sandbox_api)
    async with client:
        await client.add_alias("a.example.com")
        await client.add_alias("b.example.com")
        listing = await client.list_aliases()
    assert listing.kind is ResultKind.UNREADABLE_LIST and not listing.ok
    assert not listing.kind.is_transient and listing.attempts == 1 and sleep.delays == []
    assert listing.domains == ()
    assert listing.message == (
        "item 1 of 2 is a dict with keys ['host', 'ssl']; "
        "expected a name or an object with 'domain'"
    )
    assert listing.to_json()["ok"] is False and listing.to_json()["domains"] == []


@pytest.mark.parametrize("flag", [1, "1", True, "true", "TRUE"])
def test_a_wildcard_flag_makes_a_wildcard(flag: object) -> None:
    items = [{"domain": "b.com", "wildcard": flag}, {"domain": "*.c.com", "wildcard": flag}]
    assert read_listing(items) == ("*.b.com", "*.c.com")


@pytest.mark.parametrize("flag", [0, "0", False, "false", "", None])
def test_a_cleared_wildcard_flag_keeps_the_name(flag: object) -> None:
    assert read_listing([{"domain": "b.com", "wildcard": flag}, "*.d.com"]) == ("*.d.com", "b.com")


def test_names_are_read_from_domain_name_or_alias() -> None:
    items = [{"domain": "a.com"}, {"name": "B.com"}, {"alias": "c.com", "ssl": 1}, "a.com"]
    assert read_listing(items) == ("a.com", "b.com", "c.com")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"host": "x.com", "ssl": True}, "item 3 of 4 is a dict with keys ['host', 'ssl']"),
        (42, "item 3 of 4 is a int; expected a name or an object with 'domain'"),
        (["x.com"], "item 3 of 4 is a list"),
        ({"domain": None}, "item 3 of 4: its 'domain' is a null, not a domain name"),
        ("not a domain", "item 3 of 4 is 'not a domain', not a domain name"),
        ({"domain": "x.com", "wildcard": "yes"}, "item 3 of 4: its 'wildcard' flag is 'yes'"),
    ],
)
def test_one_unreadable_item_fails_the_whole_list(bad: object, message: str) -> None:
    with pytest.raises(UnreadableItemError) as raised:
        read_listing(["a.com", {"domain": "b.com"}, bad, "d.com"])
    assert str(raised.value).startswith(message)
