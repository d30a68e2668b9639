"""After a full run with faults (Closte failing in every way, the database cut off, checks
failing and passing, TUIs and socket clients attached), the Closte API key and the database
password appear nowhere: not in the store's files, the daemon's stderr (its journald log),
what a socket client received, the CLI's output or the TUI's screens; not raw, not URL- or
JSON-encoded. Another user's changes are refused on the socket, and the store and socket
have the modes the README promises."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from control_fixtures import socket_dir
from daemon_harness import DaemonProcess, lay_out, run_cli
from db_fixtures import MYSQL_HOST, MYSQL_PORT, TcpRelay, add_mapping, mysql_database
from reliability_support import Follower
from test_control_peers import CHANGES, NOGROUP_NAME, as_nobody

from closte_sync.sandbox.runner import Sandbox
from closte_sync.tui.app import ClosteSyncApp
from closte_sync.tui.link import Backoff

__all__ = ["socket_dir"]

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

# Characters that every encoding spells differently.
API_KEY = f"sbx+{secrets.token_hex(12)}/key="
DB_PASSWORD = f"pw+{secrets.token_hex(8)}/\\x="
FAULTS = {
    "rates": {"server_error": 0.2, "html": 0.05, "rate_limit": 0.05, "timeout": 0.03},
    # The first requests meet each kind once, whatever the draws.
    "queue": ["server_error", "html", "rate_limit", "timeout", "empty", "malformed"],
    "retry_after": "1",
    "hold_s": 2.0,
}


@pytest.fixture
def closte_sandbox_options() -> dict[str, Any]:
    return {"api_keys": [API_KEY]}


def spellings(secret: str) -> dict[str, bytes]:
    return {
        "raw": secret.encode(),
        "url": quote(secret, safe="").encode(),
        "url-plus": quote_plus(secret).encode(),
        "json": json.dumps(secret)[1:-1].encode(),
        "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1].encode(),
    }


def leaks(haystacks: dict[str, bytes]) -> list[str]:
    found = []
    for secret_name, secret in (("api key", API_KEY), ("db password", DB_PASSWORD)):
        for spelling, needle in spellings(secret).items():
            found += [f"{secret_name} ({spelling}) in {where}" for where, hay in
                      haystacks.items() if needle in hay]  # fmt: skip
    return found


@pytest.mark.heavy
@pytest.mark.mysql
async def test_no_secret_anywhere_after_a_run_with_faults(
    closte_sandbox: Sandbox, tmp_path: Path, socket_dir: Path
) -> None:
    file_names = [f"sec{i}.example.test" for i in range(5)]
    db_names = ["maria-sec0.example.test", "maria-sec1.example.test"]
    site = lay_out(closte_sandbox, tmp_path, file_lines=file_names)
    site.point_at_network(file_names[0], db_names[0])  # these go live; the rest fail DNS
    socket_path = socket_dir / "control.sock"
    relay = TcpRelay(MYSQL_HOST, MYSQL_PORT)
    await relay.start()
    async with mysql_database() as db:
        user = f"cs_{secrets.token_hex(4)}"
        await db.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", DB_PASSWORD)
        await db.execute(f"GRANT ALL ON `{db.name}`.* TO '{user}'@'127.0.0.1'")
        for name in db_names:
            await add_mapping(db, name, blog_id=1)
        url = f"mysql://{user}:{quote(DB_PASSWORD, safe='')}@127.0.0.1:{relay.port}/{db.name}"
        closte_sandbox.api.faults.update(FAULTS)
        daemon = await DaemonProcess.start(
            site,
            CLOSTE_SYNC_DATABASE_URL=url,
            CLOSTE_SYNC_DATABASE_POLL_S="0.2",
            CLOSTE_SYNC_SOCKET_PATH=str(socket_path),
            CLOSTE_SYNC_SOCKET_GROUP=NOGROUP_NAME,
            CLOSTE_SYNC_CLOSTE_TIMEOUT_S="1",
        )
        follower = Follower(socket_path)
        outputs: dict[str, bytes] = {}
        try:
            await daemon.wait_for("ready:")
            await follower.start()
            await follower.ask(1, "subscribe")
            # The queued faults end the first pass (a malformed list stops it); a resync
            # from the socket runs the next one, with the random faults still on.
            await daemon.wait_for("pass:")
            await follower.ask(2, "resync")
            await daemon.wait_for("domain-", "Marking domain as done")

            # The modes the README promises, while it runs.
            assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o660
            assert stat.S_IMODE(os.stat(site.store_path).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(site.store_path.parent).st_mode) == 0o700

            # Another user (nobody, in the socket's group) may look, not change.
            hello, status, *changes = await as_nobody(socket_path, ("status", {}), *CHANGES)
            assert hello["data"]["role"] == "reader" and status["ok"] is True
            for answer in changes:
                assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
            assert "interval set" not in daemon.text and "released plan" not in daemon.text

            # The database goes away and comes back: its errors are logged too.
            mark = len(daemon.lines)
            await relay.cut()
            await daemon.wait_for("database unreachable", start=mark)
            await relay.restore()

            # Closte's faults end; a resync from the socket runs a clean pass.
            closte_sandbox.api.faults.update({"rates": {}})
            mark = len(daemon.lines)
            for number, op in enumerate(["status", "domains", "events", "hints", "resync"], 3):
                await follower.ask(number, op)
            await follower.wait_for(b'"id":7')
            await daemon.wait_for("pass:", start=mark)
            await follower.wait_for(b'"push":"event"')
            for command in (["status"], ["domains"], ["logs"], ["config"]):
                _code, out, err = await run_cli(
                    site, *command, CLOSTE_SYNC_SOCKET_PATH=str(socket_path),
                    CLOSTE_SYNC_DATABASE_URL=url,
                )  # fmt: skip
                outputs[" ".join(command)] = (out + err).encode()

            # Two TUIs on the socket, every screen looked at.
            screens = await tui_screens(socket_path)
            assert screens
        finally:
            await follower.close()
            await daemon.stop()
            await daemon.kill()
            await relay.cut()

    outcomes = {r.outcome for r in closte_sandbox.state.requests}
    assert set(FAULTS["queue"]) <= outcomes  # faults were met
    haystacks = {
        "stderr": daemon.text.encode(),
        "socket traffic": bytes(follower.received),
        **{f"`closte-sync {k}`": v for k, v in outputs.items()},
        **{f"TUI screen {k}": v.encode() for k, v in screens.items()},
    }
    for path in site.store_path.parent.iterdir():
        haystacks[f"store file {path.name}"] = path.read_bytes()
    assert len(haystacks[f"store file {site.store_path.name}"]) > 0
    # The places searched hold the run's story (so a clean result means something).
    assert b"sec0.example.test" in haystacks["socket traffic"]
    assert any("sec0.example.test" in screen for screen in screens.values())
    assert b"sec0.example.test" in haystacks["stderr"]
    # The search itself finds each spelling.
    assert len(leaks({"probe": quote(DB_PASSWORD, safe="").encode()})) >= 1
    assert leaks(haystacks) == []


async def tui_screens(socket_path: Path) -> dict[str, str]:
    screens: dict[str, str] = {}
    apps = [ClosteSyncApp(socket_path, backoff=Backoff(0.05, 0.3), blink=False) for _ in "ab"]
    async with (
        apps[0].run_test(size=(150, 44)) as first,
        apps[1].run_test(size=(120, 40)) as second,
    ):
        for label, app, pilot in (("a", apps[0], first), ("b", apps[1], second)):
            await asyncio.wait_for(app.ready.wait(), 15)
            for key in "1234":
                await pilot.press(key)
                await pilot.pause()
                screens[f"{label}{key}"] = app.export_screenshot()
    return screens
