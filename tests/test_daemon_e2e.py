"""The daemon end to end: a subprocess, the sandbox (API, DNS, TLS edge), a SQLite network
and a domains file. Each step waits for the daemon's own line saying it happened."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import pytest
from daemon_harness import DaemonProcess, lay_out
from db_fixtures import MYSQL_HOST, MYSQL_PORT, add_mapping, mysql_database

from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]


async def test_a_mapping_goes_live_is_written_back_and_removed_again(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(
        closte_sandbox,
        tmp_path,
        mappings=[("shop.example.test", 1)],
        file_lines=["landing.example.test"],
    )
    site.point_at_network("shop.example.test", "landing.example.test", "new.example.test")
    closte_sandbox.dns.set_a("elsewhere.example.test", ["127.0.0.9"])
    daemon = await DaemonProcess.start(site)
    try:
        await daemon.wait_for("ready:")
        await daemon.wait_for("domain-shop.example.test", "Marking domain as done")
        await daemon.wait_for("domain-landing.example.test", "Marking domain as done")

        # A mapping inserted while it runs: added, checked, written back.
        mark = len(daemon.lines)
        site.insert_mapping("new.example.test")
        await daemon.wait_for("add new.example.test: done", start=mark)
        await daemon.wait_for("domain-new.example.test", "Marking domain as done", start=mark)
        assert "new.example.test" in site.held()
        assert site.mapping_stage("new.example.test") == ("done", 1)

        # A domain whose DNS points elsewhere: the precise reason, with what to do.
        mark = len(daemon.lines)
        site.insert_mapping("elsewhere.example.test")
        line = daemon.lines[
            await daemon.wait_for("domain-elsewhere.example.test", "127.0.0.9", start=mark)
        ]
        assert closte_sandbox.network_ip in line and "What to do" in line

        # A mapping deleted: removed from Closte.
        mark = len(daemon.lines)
        site.delete_mapping("new.example.test")
        await daemon.wait_for("remove new.example.test: done", start=mark)
        assert "new.example.test" not in site.held()

        # SIGTERM: gone within 5 s.
        started = time.monotonic()
        code = await daemon.stop(timeout=5)
        assert code == 0 and time.monotonic() - started < 5
    finally:
        await daemon.kill()
    assert closte_sandbox.api_key not in daemon.text


async def test_a_site_made_while_the_daemon_was_down_gets_its_record(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    # A network whose existing site has no record (made before the plugin ran).
    site = lay_out(closte_sandbox, tmp_path, sites=["one.network.sandbox.test"], site_records=False)
    site.point_at_network("one.network.sandbox.test", "two.network.sandbox.test")
    daemon = await DaemonProcess.start(site)
    try:
        await daemon.wait_for("ready:")
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
    site.network.add_site("two.network.sandbox.test")
    daemon = await DaemonProcess.start(site)
    try:
        await daemon.wait_for("created the domain record for new site", "two.network")
        await daemon.wait_for("add two.network.sandbox.test: done")
        assert "two.network.sandbox.test" in site.held()
        assert "one.network.sandbox.test" not in site.held()  # there before: no record
    finally:
        await daemon.kill()


async def test_kill_9_mid_batch_then_restart_converges_without_doubling(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    names = [f"d{i:03}.example.test" for i in range(60)]
    site = lay_out(closte_sandbox, tmp_path, file_lines=names)
    closte_sandbox.api.faults.update({"latency_ms": 50})
    daemon = await DaemonProcess.start(site, CLOSTE_SYNC_CLOSTE_RATE_PER_SECOND="10")
    try:
        await daemon.wait_for("add d0", ": done")
        await daemon.kill()  # SIGKILL in the middle of the batch
    finally:
        await daemon.kill()
    assert 0 < len(site.held()) < len(names), len(site.held())
    closte_sandbox.api.faults.update({"latency_ms": 0})
    daemon = await DaemonProcess.start(site)
    try:
        await daemon.wait_for("ready:")
        await daemon.wait_for("pass:", "; in sync", timeout=60)
        assert site.held() == set(names)
    finally:
        await daemon.kill()
    requests = closte_sandbox.state.requests
    adds = [
        r.fields["domain"]
        for r in requests
        if r.path.endswith("/adddomainalias") and r.outcome == "ok"
    ]
    # An add that succeeded is never sent again ("already exists" would show it).
    assert sorted(set(adds)) == sorted(names) and len(adds) == len(names)
    assert not [r for r in requests if r.path.endswith("/deletedomainalias")]


@pytest.mark.mysql
async def test_on_mariadb_a_mapping_goes_live_and_is_written_back(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path)
    site.point_at_network("maria.example.test")
    async with mysql_database() as db:
        url = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{db.name}"
        daemon = await DaemonProcess.start(
            site, CLOSTE_SYNC_DATABASE_URL=url, CLOSTE_SYNC_DATABASE_POLL_S="0.2"
        )
        try:
            await daemon.wait_for("ready:")
            mark = len(daemon.lines)
            row = await add_mapping(db, "maria.example.test", blog_id=1)
            await daemon.wait_for("add maria.example.test: done", start=mark)
            await daemon.wait_for("domain-maria.example.test", "Marking domain as done")
            rows = await db.query(
                f"SELECT stage, secure FROM {db.tables.mappings} WHERE id = %s", row
            )
            assert [tuple(r) for r in rows] == [("done", 1)]

            mark = len(daemon.lines)
            await db.execute(f"DELETE FROM {db.tables.mappings} WHERE id = %s", row)
            await daemon.wait_for("remove maria.example.test: done", start=mark)
            assert "maria.example.test" not in site.held()
        finally:
            await daemon.kill()


async def test_systemd_hears_ready_status_and_watchdog_pings(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path, file_lines=["notify.example.test"])
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    daemon = await DaemonProcess.start(site, NOTIFY_SOCKET=address, WATCHDOG_USEC="400000")
    try:
        seen: set[str] = set()
        async with asyncio.timeout(30):
            while not {"READY=1", "WATCHDOG=1", "STATUS"} <= seen:
                message = (await loop.sock_recv(sock, 4096)).decode()
                for line in message.splitlines():
                    seen.add(line if "=1" in line else line.split("=", 1)[0])
        assert await daemon.stop() == 0
        stopping = (await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)).decode()
        while "STOPPING=1" not in stopping:
            stopping = (await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)).decode()
    finally:
        await daemon.kill()
        sock.close()


async def test_sighup_reloads_the_configuration(closte_sandbox: Sandbox, tmp_path: Path) -> None:
    site = lay_out(closte_sandbox, tmp_path, file_lines=["first.example.test"])
    other = tmp_path / "other-domains.txt"
    other.write_text("second.example.test\n")
    config = tmp_path / "config.toml"
    config.write_text(f'[domains_file]\npath = "{site.domains_file}"\n')
    daemon = await DaemonProcess.start(site, config=config, CLOSTE_SYNC_DOMAINS_FILE_PATH="")
    try:
        await daemon.wait_for("add first.example.test: done")
        config.write_text(f'[domains_file]\npath = "{other}"\n')
        mark = len(daemon.lines)
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.wait_for("reloading", start=mark)
        await daemon.wait_for("add second.example.test: done", start=mark)
        assert "second.example.test" in site.held()
        # The first file's domain has no source any more: it is removed again.
        await daemon.wait_for("remove first.example.test: done", start=mark)
    finally:
        await daemon.kill()


async def test_checks_start_as_soon_as_closte_accepts_an_add(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    names = [f"b{i:02}.example.test" for i in range(30)]
    site = lay_out(closte_sandbox, tmp_path, file_lines=names)
    site.point_at_network(*names)
    # 30 adds at 5 calls/s: the batch takes about 6 s.
    daemon = await DaemonProcess.start(site, CLOSTE_SYNC_CLOSTE_RATE_PER_SECOND="5")
    try:
        first_done = await daemon.wait_for("domain-b00.example.test", "Marking domain as done")
        pass_end = await daemon.wait_for("pass:", "Closte holds 30")
        assert first_done < pass_end  # live before the batch finished
    finally:
        await daemon.kill()
