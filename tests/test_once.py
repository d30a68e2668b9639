"""`closte-sync once` end to end: a subprocess, the sandbox, a SQLite network, a domains file."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_harness import lay_out, run_cli

from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]


async def test_once_adds_checks_and_writes_back(closte_sandbox: Sandbox, tmp_path: Path) -> None:
    site = lay_out(
        closte_sandbox,
        tmp_path,
        mappings=[("shop.example.test", 1)],
        file_lines=["landing.example.test"],
    )
    site.point_at_network("shop.example.test", "landing.example.test")
    code, out, err = await run_cli(site, "once", "--json")
    result = json.loads(out)
    assert code == 0, (out, err)
    assert result["in_sync"] and sorted(result["add"]) == [
        "landing.example.test",
        "shop.example.test",
    ]
    assert site.held() == {"shop.example.test", "landing.example.test"}
    assert result["moved"] == {"landing.example.test": "done", "shop.example.test": "done"}
    assert site.mapping_stage("shop.example.test") == ("done", 1)
    assert closte_sandbox.api_key not in out + err


async def test_once_dry_run_calls_nothing(closte_sandbox: Sandbox, tmp_path: Path) -> None:
    site = lay_out(closte_sandbox, tmp_path, file_lines=["a.example.test"])
    code, out, _err = await run_cli(site, "once", "--dry-run")
    assert code == 1 and "+ a.example.test" in out
    assert site.held() == set()
