"""The socket subcommands (status, logs, domains, retry, set, release) against a real
server: each runs its own event loop in a thread, as it would in its own process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from control_fixtures import API_KEY, PLAN_ID, Running, running, socket_dir

from closte_sync.daemon.cli import main
from closte_sync.daemon.control.cli_support import parse_since
from closte_sync.daemon.events import Level, make_event

__all__ = ["running", "socket_dir"]


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_status_is_healthy_after_a_recent_good_pass(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    running.actions.status["last_good_pass_at"] = time.time()
    code, out, _ = await cli(capsys, "status", "--socket", str(running.path))
    assert code == 0, out
    assert "check interval:  300 s (from default)" in out
    assert "source domains_file: NOT HEALTHY" in out and "domains.txt:3: bad name" in out
    assert out.rstrip().endswith("healthy")
    assert API_KEY not in out


async def test_status_fails_when_passes_are_stale_or_removals_are_held(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    running.actions.status["last_good_pass_at"] = time.time() - 3600
    code, out, _ = await cli(capsys, "status", "--socket", str(running.path))
    assert code == 1 and "UNHEALTHY: the last good pass was 60 min ago" in out

    running.actions.status["last_good_pass_at"] = time.time()
    running.actions.status["held_plan"] = {"id": PLAN_ID, "domains": ["a.example.com"]}
    code, out, _ = await cli(capsys, "status", "--json", "--socket", str(running.path))
    report = json.loads(out)
    assert code == 1 and report["healthy"] is False
    assert f"closte-sync release {PLAN_ID}" in report["problems"][0]
    assert report["daemon"]["api_key"] != API_KEY


async def test_commands_say_plainly_when_the_daemon_is_not_running(
    socket_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(socket_dir / "none.sock")
    for argv in (["status"], ["logs"], ["domains"], ["retry", "a.example.com"]):
        code, out, err = await cli(capsys, *argv, "--socket", missing)
        assert code == 3, argv
        assert "daemon is not running: there is no socket at" in err and out == ""
    code, out, _ = await cli(capsys, "domains", "--json", "--socket", missing)
    assert code == 3 and json.loads(out)["error"]["code"] == "unreachable"


async def test_domains_table_and_stage_filter(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await cli(capsys, "domains", "--socket", str(running.path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["DOMAIN", "STATE", "STAGE"]
    blog = next(line for line in lines if line.startswith("blog.example.org"))
    assert "checking-dns" in blog and "3/5" in blog and "A 203.0.113.9" in blog
    new = next(line for line in lines if line.startswith("new.example.net"))
    assert "HTTP 502" in new and API_KEY not in out

    code, out, _ = await cli(
        capsys, "domains", "--stage", "failed", "--json", "--socket", str(running.path)
    )
    assert [d["domain"] for d in json.loads(out)["domains"]] == ["broken.example.com"]


async def test_retry_set_and_release(running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    sock = str(running.path)
    code, out, _ = await cli(capsys, "retry", "blog.example.org", "--socket", sock)
    assert (code, out.strip()) == (0, "blog.example.org: checking again now")

    code, out, _ = await cli(capsys, "set", "interval", "30", "--json", "--socket", sock)
    assert code == 0 and json.loads(out)["message"] == "interval_s is now 30"
    assert running.actions.status["interval"] == {"value": 30, "origin": "operator"}

    calls = len(running.actions.calls)
    code, _, err = await cli(capsys, "set", "interval", "5", "--socket", sock)
    assert code == 2 and "interval_s: 5 is outside 10..300" in err
    code, _, err = await cli(capsys, "set", "ssl-tries", "many", "--socket", sock)
    assert code == 2 and "expected a whole number" in err
    assert len(running.actions.calls) == calls  # refused before reaching the daemon

    code, _, err = await cli(capsys, "release", "plan-wrong", "--socket", sock)
    assert code == 1 and "no held plan 'plan-wrong'" in err
    running.actions.status["held_plan"] = {"id": PLAN_ID, "domains": ["a.example.com"]}
    code, out, _ = await cli(capsys, "release", PLAN_ID, "--socket", sock)
    assert code == 0 and "1 removals go ahead" in out


async def test_logs_filter_by_level_domain_and_since(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = str(running.path)
    code, out, _ = await cli(capsys, "logs", "--socket", sock)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5 and "pass started" in lines[0] and "pass finished" in lines[-1]

    code, out, _ = await cli(capsys, "logs", "--level", "warning", "--socket", sock)
    assert [line.split()[2] for line in out.splitlines()] == ["WARNING", "ERROR"]

    code, out, _ = await cli(
        capsys, "logs", "--domain", "shop.example.com", "--json", "--socket", sock
    )
    assert [json.loads(line)["domain"] for line in out.splitlines()] == ["shop.example.com"]

    code, out, _ = await cli(capsys, "logs", "--since", "1h", "--socket", sock)
    assert out == ""  # the seeded events are from January

    code, out, _ = await cli(capsys, "logs", "-n", "2", "--socket", sock)
    assert len(out.splitlines()) == 2 and "pass finished" in out

    code, _, err = await cli(capsys, "logs", "--since", "last tuesday", "--socket", sock)
    assert code == 2 and "--since 'last tuesday'" in err


async def test_logs_follow_prints_new_events_until_interrupted(running: Running) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "logs",
        "--follow",
        "--level",
        "warning",
        "--socket",
        str(running.path),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        # The history comes first (two warnings and errors), then what happens next.
        history = [await asyncio.wait_for(process.stdout.readline(), 30) for _ in range(2)]
        assert b"DNS propagation" in history[0] and b"HTTP 502" in history[1]
        running.hub.emit(make_event(Level.INFO, "reconcile", "not shown"))
        running.hub.emit(make_event(Level.ERROR, "reconcile", "shown live"))
        live = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"ERROR" in live and b"shown live" in live
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 130


def test_since_accepts_ages_dates_and_epoch_seconds() -> None:
    now = 1_800_000_000.0
    assert parse_since("10m", now) == now - 600
    assert parse_since("2h", now) == now - 7200
    assert parse_since("1d", now) == now - 86400
    assert parse_since("45", now) == now - 45
    assert parse_since("1700000000", now) == 1_700_000_000
    assert parse_since("2026-01-01T00:00:00+00:00", now) == 1_767_225_600
    with pytest.raises(ValueError, match="use an age like"):
        parse_since("yesterday", now)
