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


async def test_a_mass_removal_is_held_then_released_by_its_plan_id_only(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    names = [f"m{i}.example.test" for i in range(8)]
    site = lay_out(closte_sandbox, tmp_path, file_lines=names)
    guard = {"CLOSTE_SYNC_GUARD_MIN_HELD": "4", "CLOSTE_SYNC_GUARD_MAX_REMOVE_SHARE": "0.25"}
    assert (await run_cli(site, "once", "--quiet", **guard))[0] in (0, 1)
    assert site.held() == set(names)

    site.domains_file.write_text("m0.example.test\n")
    code, out, _ = await run_cli(site, "once", "--json", "--quiet", **guard)
    held = json.loads(out)["held_plan"]
    assert code == 1 and held is not None and sorted(held["domains"]) == names[1:]
    assert site.held() == set(names)

    # A wrong id releases nothing.
    code, out, _ = await run_cli(site, "once", "--json", "--quiet", "--release", "0" * 12, **guard)
    assert code == 1 and json.loads(out)["held_plan"]["id"] == held["id"]
    assert site.held() == set(names)

    # A larger removal than the one released gets a new id and is held again.
    site.domains_file.write_text("# nothing\n")
    code, out, _ = await run_cli(
        site, "once", "--json", "--quiet", "--release", held["id"], **guard
    )
    assert json.loads(out)["held_plan"]["id"] != held["id"]
    assert site.held() == set(names)

    # The exact plan, released by its id: those removals and no others.
    site.domains_file.write_text("m0.example.test\n")
    code, out, _ = await run_cli(
        site, "once", "--json", "--quiet", "--release", held["id"], **guard
    )
    assert sorted(json.loads(out)["remove"]) == names[1:]
    assert site.held() == {"m0.example.test"}


async def test_once_leaves_calls_to_the_leader_when_clustering_is_on(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path, file_lines=["a.example.test"])
    cluster = {
        "CLOSTE_SYNC_CLUSTER_ENABLED": "true",
        "CLOSTE_SYNC_DATABASE_URL": "mysql://root@127.0.0.1:3306/test",
    }
    code, _out, err = await run_cli(site, "once", **cluster)
    assert code == 2 and "only the leading daemon" in err
    assert site.held() == set()
