"""`closte-sync doctor` against a sample network and the sandbox, over real sockets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from db_fixtures import MYSQL_HOST, MYSQL_PORT, mysql_database

from closte_sync.daemon.commands import doctor as doctor_command
from closte_sync.daemon.doctor import CheckResult, DoctorContext, Status, run_checks
from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.wordpress import SampleNetwork, build_network

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]


def _env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    # Always point the client at the sandbox: no test may reach the real Closte.
    return {
        "CLOSTE_SYNC_CLOSTE_BASE_URL": sandbox.api.url,
        "CLOSTE_SYNC_CLOSTE_RETRY_BUDGET": "0",
        "CLOSTE_SYNC_STORE_PATH": str(tmp_path / "state" / "store.sqlite3"),
        "CLOSTE_SYNC_SOCKET_PATH": str(tmp_path / "run" / "control.sock"),
    }


def _network(tmp_path: Path, api_key: str) -> SampleNetwork:
    return build_network(tmp_path / "wp", api_key=api_key, mappings=[("shop.example.com", 1)])


async def _run(tmp_path: Path, env: dict[str, str], cwd: Path) -> dict[str, CheckResult]:
    context = DoctorContext(
        config_path=None, env=env, cwd=cwd, default_config_path=tmp_path / "absent.toml"
    )
    return {result.name: result for result in await run_checks(context)}


async def test_a_good_installation_passes_every_check(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    network = _network(tmp_path, closte_sandbox.api_key)
    results = await _run(tmp_path, _env(closte_sandbox, tmp_path), network.root)
    assert {r.status for r in results.values()} == {Status.PASS}, results
    assert "the API key is accepted" in results["Closte connection"].detail
    assert "wu_domain_mappings" in results["multisite database"].detail
    # The doctor looks; it never creates the store.
    assert not (tmp_path / "state").exists()
    # The connection test is the plugin's: an add with no domain field at all.
    (request,) = closte_sandbox.state.requests
    assert request.path == "/adddomainalias"
    assert "domain" not in request.fields


async def test_no_wp_config_fails_with_a_fix_and_skips_nothing_else_silently(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    results = await _run(tmp_path, _env(closte_sandbox, tmp_path), empty)
    wp = results["wp-config.php"]
    assert wp.status is Status.FAIL
    assert "wordpress_root" in wp.fix
    assert results["Closte API key"].status is Status.FAIL
    assert results["Closte connection"].status is Status.SKIP


async def test_a_wrong_key_fails_the_connection_check_with_the_key_hint(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    wrong_key = "wrong-key-0123456789abcdef"
    network = _network(tmp_path, wrong_key)
    results = await _run(tmp_path, _env(closte_sandbox, tmp_path), network.root)
    check = results["Closte connection"]
    assert check.status is Status.FAIL
    assert "auth" in check.detail
    assert "CLOSTE_CLIENT_API_KEY" in check.fix
    assert all(wrong_key not in f"{r.detail} {r.fix}" for r in results.values())


async def test_missing_plugin_tables_and_a_foreign_store_fail(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    network = _network(tmp_path, closte_sandbox.api_key)
    with network.connect() as db:
        db.execute("DROP TABLE wp_wu_domain_mappings")
    env = _env(closte_sandbox, tmp_path)
    foreign = tmp_path / "foreign.sqlite3"
    foreign.write_text("this is not a database, it is a text file that is long enough" * 3)
    env["CLOSTE_SYNC_STORE_PATH"] = str(foreign)
    results = await _run(tmp_path, env, network.root)
    database = results["multisite database"]
    assert database.status is Status.FAIL
    assert "Ultimate Multisite" in database.fix
    store = results["state store"]
    assert store.status is Status.FAIL
    assert "not a closte-sync store" in store.detail


async def test_a_socket_folder_under_a_file_fails(closte_sandbox: Sandbox, tmp_path: Path) -> None:
    network = _network(tmp_path, closte_sandbox.api_key)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    env = _env(closte_sandbox, tmp_path)
    env["CLOSTE_SYNC_SOCKET_PATH"] = str(blocker / "control.sock")
    results = await _run(tmp_path, env, network.root)
    assert results["control socket folder"].status is Status.FAIL


def test_the_command_prints_each_check_and_exits_1_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    monkeypatch.setenv("CLOSTE_SYNC_CLOSTE_BASE_URL", "http://127.0.0.1:9/api/client")
    monkeypatch.setenv("CLOSTE_SYNC_STORE_PATH", str(tmp_path / "s.sqlite3"))
    monkeypatch.setenv("CLOSTE_SYNC_SOCKET_PATH", str(tmp_path / "c.sock"))
    config = tmp_path / "config.toml"
    config.write_text("")
    code = doctor_command.run(argparse.Namespace(config=config, json=False))
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  wp-config.php" in out
    assert "fix:" in out
    assert "checks passed: some checks failed" in out


async def test_a_check_that_breaks_is_a_failure_not_a_traceback(tmp_path: Path) -> None:
    async def broken(ctx: DoctorContext) -> CheckResult:
        raise OverflowError("connect(): port must be 0-65535")

    context = DoctorContext(config_path=None, env={}, cwd=tmp_path)
    (result,) = await run_checks(context, (broken,))
    assert result.status is Status.FAIL
    assert "OverflowError" in result.detail and "port must be" in result.detail


async def test_the_database_check_on_mariadb_names_missing_grants(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    async with mysql_database() as db:
        user, password = f"cs_doc_{db.name[-8:]}", "doctor-pw-0123"
        await db.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        try:
            await db.execute(f"GRANT SELECT ON `{db.name}`.* TO '{user}'@'%%'")
            network = _network(tmp_path, closte_sandbox.api_key)
            env = _env(closte_sandbox, tmp_path)
            env["CLOSTE_SYNC_DATABASE_URL"] = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{db.name}"
            good = (await _run(tmp_path, env, network.root))["multisite database"]
            assert good.status is Status.PASS, good
            assert db.name in good.detail

            env["CLOSTE_SYNC_DATABASE_URL"] = (
                f"mysql://{user}:{password}@{MYSQL_HOST}:{MYSQL_PORT}/{db.name}"
            )
            limited = (await _run(tmp_path, env, network.root))["multisite database"]
            assert limited.status is Status.FAIL
            assert "would be refused" in limited.detail
            assert "grant INSERT and UPDATE" in limited.fix
            env["CLOSTE_SYNC_DATABASE_CREATE_SITE_RECORDS"] = "false"
            env["CLOSTE_SYNC_DATABASE_WRITE_BACK"] = "false"
            reading_only = (await _run(tmp_path, env, network.root))["multisite database"]
            assert reading_only.status is Status.PASS, reading_only
            assert password not in limited.detail + limited.fix
        finally:
            await db.execute(f"DROP USER '{user}'@'%%'")
