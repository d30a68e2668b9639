"""`closte-sync doctor` with [cluster] on: the grant the shared tables need, on MariaDB, and
SQLite's single-node answer."""

from __future__ import annotations

from pathlib import Path

from db_fixtures import MYSQL_HOST, MYSQL_PORT, mysql_database

from closte_sync.daemon.doctor import (
    CheckResult,
    DoctorContext,
    Status,
    check_cluster,
    check_configuration,
)
from closte_sync.sandbox.wordpress import build_network

NAME = "several web nodes"


async def _check(tmp_path: Path, env: dict[str, str]) -> CheckResult | None:
    root = tmp_path / "wp"
    if not root.exists():
        build_network(root, api_key="k" * 20, mappings=[("a.example.com", 1)])
    env = {
        "CLOSTE_SYNC_STORE_PATH": str(tmp_path / "state" / "store.sqlite3"),
        "CLOSTE_SYNC_SOCKET_PATH": str(tmp_path / "run" / "control.sock"),
        "CLOSTE_SYNC_CLUSTER_ENABLED": "true",
        **env,
    }
    context = DoctorContext(
        config_path=None, env=env, cwd=root, default_config_path=tmp_path / "no.toml"
    )
    await check_configuration(context)
    result = await check_cluster(context)
    assert result is None or result.name == NAME
    return result


async def _listed(tmp_path: Path, env: dict[str, str]) -> CheckResult:
    result = await _check(tmp_path, env)
    assert result is not None, "with [cluster] on, the check is listed"
    return result


async def test_the_grant_the_shared_tables_need_is_named_until_it_is_there(
    tmp_path: Path,
) -> None:
    async with mysql_database() as db:
        user, password = f"cs_fl_{db.name[-8:]}", "fleet-pw-0123"
        await db.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
        try:
            await db.execute(f"GRANT SELECT ON `{db.name}`.* TO '{user}'@'%%'")
            limited = {
                "CLOSTE_SYNC_DATABASE_URL": (
                    f"mysql://{user}:{password}@{MYSQL_HOST}:{MYSQL_PORT}/{db.name}"
                )
            }
            no_create = await _listed(tmp_path, limited)
            assert no_create.status is Status.FAIL
            assert "wp_closte_sync_ledger" in no_create.detail
            assert "may not CREATE" in no_create.detail
            assert "CREATE, SELECT, INSERT, UPDATE, DELETE" in no_create.fix

            root = {"CLOSTE_SYNC_DATABASE_URL": f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{db.name}"}
            fine = await _listed(tmp_path, root)
            assert fine.status is Status.PASS, fine
            assert "no leader yet" in fine.detail
            # The doctor looks; it creates nothing.
            assert await db.query("SHOW TABLES LIKE 'wp_closte_sync%%'") == []

            for table in ("wp_closte_sync_ledger", "wp_closte_sync_leader"):
                await db.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, domain TEXT)")
            select_only = await _listed(tmp_path, limited)
            assert select_only.status is Status.FAIL
            assert "INSERT on wp_closte_sync_ledger refused" in select_only.detail
            await db.execute(f"GRANT INSERT, UPDATE, DELETE ON `{db.name}`.* TO '{user}'@'%%'")
            granted = await _listed(tmp_path, limited)
            assert granted.status is Status.PASS, granted
            for result in (no_create, select_only, granted):
                assert password not in result.detail + result.fix
        finally:
            await db.execute(f"DROP USER '{user}'@'%%'")


async def test_a_sqlite_network_is_single_node_and_the_doctor_says_so(tmp_path: Path) -> None:
    result = await _listed(
        tmp_path, {"CLOSTE_SYNC_DATABASE_URL": f"sqlite:///{tmp_path}/wp/.ht.sqlite"}
    )
    assert result.status is Status.PASS
    assert "single-node" in result.detail


async def test_with_cluster_off_the_check_is_not_listed(tmp_path: Path) -> None:
    assert await _check(tmp_path, {"CLOSTE_SYNC_CLUSTER_ENABLED": "false"}) is None
