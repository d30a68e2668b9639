"""`closte-sync closte` against the sandbox API, configured through the environment."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import pytest
from closte_fixtures import API_KEY, sandbox_api

from closte_sync.daemon.cli import build_parser
from closte_sync.daemon.commands.closte import run_async
from closte_sync.sandbox.api import SandboxApi
from closte_sync.shared.secret import mask

__all__ = ["sandbox_api"]  # the fixture, imported for pytest


@pytest.fixture
def configured(
    sandbox_api: SandboxApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> SandboxApi:
    """The environment points the command at the sandbox; the working directory is empty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOSTE_SYNC_CLOSTE_API_KEY", API_KEY)
    monkeypatch.setenv("CLOSTE_SYNC_CLOSTE_BASE_URL", sandbox_api.url)
    return sandbox_api


async def _run(*argv: str) -> tuple[int, str, str]:
    args = build_parser(only="closte").parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = await run_async(args, out, err)
    return code, out.getvalue(), err.getvalue()


async def test_add_prints_the_result_and_exits_0(configured: SandboxApi) -> None:
    code, out, _ = await _run("closte", "add", "Shop.Example.com")
    assert code == 0
    assert out.startswith("add shop.example.com: done: Domain alias added")
    assert "shop.example.com" in configured.state.held(API_KEY)


async def test_add_json(configured: SandboxApi) -> None:
    code, out, _ = await _run("closte", "add", "*.example.net", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["kind"], data["ok"], data["domain"], data["hint"]) == (
        "done",
        True,
        "*.example.net",
        None,
    )
    assert configured.log[-1].fields["wildcard"] == "1"


async def test_remove_of_an_absent_alias_succeeds(configured: SandboxApi) -> None:
    code, out, _ = await _run("closte", "remove", "never.example.com")
    assert code == 0 and "already-absent" in out


async def test_list_prints_every_alias(configured: SandboxApi) -> None:
    configured.state.add_alias(API_KEY, "b.example.com", False)
    configured.state.add_alias(API_KEY, "xn--bcher-kva.example", False)
    code, out, _ = await _run("closte", "list")
    assert code == 0
    assert "2 alias(es):" in out
    assert "  b.example.com\n" in out and "bücher.example (xn--bcher-kva.example)" in out


async def test_failure_prints_the_hint_and_exits_1(
    configured: SandboxApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "ck_live_this_key_is_not_known_to_closte"
    monkeypatch.setenv("CLOSTE_SYNC_CLOSTE_API_KEY", wrong)
    code, out, err = await _run("closte", "test")
    assert code == 1
    assert "test: auth-failed: Invalid API key" in out
    assert "hint [closte-api-key]: Check the Closte API key" in out
    assert wrong not in out + err


async def test_json_failure_carries_the_hint(configured: SandboxApi) -> None:
    configured.faults.update({"domains": {"p.example.com": "permission"}})
    code, out, _ = await _run("closte", "add", "p.example.com", "--json")
    data = json.loads(out)
    assert code == 1
    assert data["kind"] == "permission-denied" and data["hint"]["id"] == "closte-permissions"


async def test_retries_option_sets_the_budget(configured: SandboxApi) -> None:
    configured.faults.update({"domains": {"s.example.com": "server_error"}})
    code, out, _ = await _run("closte", "add", "s.example.com", "--retries", "0", "--json")
    assert code == 1 and json.loads(out)["attempts"] == 1
    assert len(configured.log) == 1


async def test_dry_run_sends_nothing_and_masks_the_key(configured: SandboxApi) -> None:
    code, out, _ = await _run("closte", "add", "*.example.org", "--dry-run")
    assert code == 0
    assert f"POST {configured.url}/adddomainalias" in out
    assert "domain=%2A.example.org&wildcard=1" in out
    assert mask(API_KEY) in out and API_KEY not in out
    assert configured.log == []


async def test_dry_run_json_of_the_connection_test(configured: SandboxApi) -> None:
    code, out, _ = await _run("closte", "test", "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and configured.log == []
    assert data["method"] == "POST" and data["fields"] == {"apikey": mask(API_KEY)}


async def test_invalid_domain_exits_1_without_a_request(configured: SandboxApi) -> None:
    code, out, _ = await _run("closte", "add", "http://example.com")
    assert code == 1 and "invalid-domain" in out
    assert configured.log == []


async def test_missing_key_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLOSTE_SYNC_CLOSTE_API_KEY", raising=False)
    code, _, err = await _run("closte", "test")
    assert code == 2 and "CLOSTE_CLIENT_API_KEY" in err


async def test_bad_configuration_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLOSTE_SYNC_CLOSTE_CONCURRENCY", "many")
    code, _, err = await _run("closte", "list")
    assert code == 2 and "CLOSTE_SYNC_CLOSTE_CONCURRENCY" in err


async def test_the_installed_command_end_to_end(sandbox_api: SandboxApi, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CLOSTE_SYNC_CLOSTE_API_KEY": API_KEY,
        "CLOSTE_SYNC_CLOSTE_BASE_URL": sandbox_api.url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "closte",
        "add",
        "cli.example.com",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert b"add cli.example.com: done" in out
    assert "cli.example.com" in sandbox_api.state.held(API_KEY)


async def test_an_unreadable_list_prints_no_aliases_and_exits_1(configured: SandboxApi) -> None:
    configured.state.add_alias(API_KEY, "b.example.com", False)
    configured.faults.update({"list_style": "garbled"})
    code, out, _ = await _run("closte", "list")
    assert code == 1
    assert out.startswith("list: unreadable-list: item 1 of 1 is a dict with keys ['host', 'ssl']")
    assert "alias(es)" not in out and "  b.example.com" not in out
    assert "hint [closte-malformed-answer]" in out
