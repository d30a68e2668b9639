"""Several networks on one host: two daemons (subprocesses) on one sandbox, each with its
own SQLite network, Closte application (API key), store and socket, laid out as the
template unit lays them out; the clients reach each one by --instance."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from control_fixtures import socket_dir
from daemon_harness import DaemonProcess, Site, lay_out, run_cli

from closte_sync.daemon.cli import build_parser
from closte_sync.daemon.control.cli_support import (
    RUN_DIR_ENV,
    InstancePaths,
    apply_instance_config,
    socket_path,
)
from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]
__all__ = ["socket_dir"]

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "closte-sync@.service"
SECOND_KEY = "beta-network-application-key-0123456789"


async def cli(site: Site, run_dir: Path, *args: str) -> tuple[int, str, str]:
    # The site's own environment points [socket] path elsewhere: --instance must win.
    return await run_cli(site, *args, **{RUN_DIR_ENV: str(run_dir)})


async def test_two_networks_two_daemons_each_client_reaches_its_own(
    closte_sandbox: Sandbox, tmp_path: Path, socket_dir: Path
) -> None:
    closte_sandbox.state.api_keys.add(SECOND_KEY)
    alpha = lay_out(closte_sandbox, tmp_path / "alpha", mappings=[("shop.alpha.test", 1)])
    beta = lay_out(closte_sandbox, tmp_path / "beta", mappings=[("shop.beta.test", 1)])
    alpha.point_at_network("shop.alpha.test")
    beta.point_at_network("shop.beta.test")
    run_dir = socket_dir / "run"
    daemons = {
        name: await DaemonProcess.start(
            site,
            CLOSTE_SYNC_SOCKET_PATH=str(run_dir / name / "control.sock"),  # as the unit sets it
            **({"CLOSTE_SYNC_CLOSTE_API_KEY": SECOND_KEY} if name == "beta" else {}),
        )
        for name, site in (("alpha", alpha), ("beta", beta))
    }
    try:
        for daemon in daemons.values():
            await daemon.wait_for("pass:", "in sync")
        # Each network's domain went to its own Closte application.
        assert set(closte_sandbox.state.held(closte_sandbox.api_key)) == {"shop.alpha.test"}
        assert set(closte_sandbox.state.held(SECOND_KEY)) == {"shop.beta.test"}

        for name, site in (("alpha", alpha), ("beta", beta)):
            code, out, err = await cli(site, run_dir, "status", "--instance", name, "--json")
            assert code in (0, 1), err  # 1: no check has passed yet is fine here
            status = json.loads(out)
            assert status["daemon"]["pid"] == daemons[name].process.pid
            assert status["domains"]["total"] == 1

            code, out, err = await cli(site, run_dir, "domains", "--instance", name, "--json")
            assert code == 0, err
            assert [row["domain"] for row in json.loads(out)["domains"]] == [f"shop.{name}.test"]

            code, out, err = await cli(site, run_dir, "logs", "--instance", name, "--json")
            assert code == 0, err
            other = "beta" if name == "alpha" else "alpha"
            assert f"shop.{name}.test" in out and f"shop.{other}.test" not in out

        # A change made through one instance's socket reaches that daemon only.
        code, out, err = await cli(alpha, run_dir, "set", "interval", "20", "--instance", "alpha")
        assert code == 0, err + out
        for name, expected in (("alpha", 20), ("beta", 10)):
            code, out, _ = await cli(alpha, run_dir, "status", "--instance", name, "--json")
            assert json.loads(out)["daemon"]["interval"]["value"] == expected

        code, out, err = await cli(beta, run_dir, "retry", "shop.beta.test", "--instance", "beta")
        assert code == 0, err
        code, out, err = await cli(alpha, run_dir, "retry", "shop.beta.test", "--instance", "alpha")
        assert code == 1 and "does not know it" in err
        code, out, err = await cli(alpha, run_dir, "release", "abc123", "--instance", "alpha")
        assert code == 1 and "no removal is held back" in err

        # No such instance: unreachable, naming the socket it looked for.
        code, out, err = await cli(alpha, run_dir, "status", "--instance", "gamma")
        assert code == 3 and str(run_dir / "gamma" / "control.sock") in err

        for daemon in daemons.values():
            assert await daemon.stop() == 0
    finally:
        for daemon in daemons.values():
            await daemon.kill()


def test_the_tui_and_every_client_resolve_the_instance_socket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    for command in ("tui", "status", "logs", "domains"):
        args = build_parser(only=command).parse_args([command, "--instance", "shop"])
        assert socket_path(args) == tmp_path / "shop" / "control.sock"
    monkeypatch.delenv(RUN_DIR_ENV)
    args = build_parser(only="tui").parse_args(["tui", "--instance", "shop"])
    assert socket_path(args) == Path("/run/closte-sync/shop/control.sock")


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "-x", "a b", "x" * 65])
def test_a_bad_instance_name_is_a_usage_error(bad: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "closte_sync.daemon.cli", "status", f"--instance={bad}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--instance" in done.stderr and "closte-sync@NAME.service" in done.stderr


def test_socket_and_instance_together_are_refused() -> None:
    parser = build_parser(only="status")
    with pytest.raises(SystemExit):
        parser.parse_args(["status", "--socket", "/tmp/x.sock", "--instance", "shop"])


@pytest.mark.parametrize("command", ["once", "daemon", "doctor", "config"])
def test_commands_that_read_the_configuration_take_the_instance_one(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    for name in ("CLOSTE_SYNC_STORE_PATH", "CLOSTE_SYNC_SOCKET_PATH"):
        monkeypatch.setenv(name, "")  # remembered, so what the test sets is undone after
        monkeypatch.delenv(name)
    args = build_parser(only=command).parse_args([command, "--instance", "shop"])
    assert apply_instance_config(args) is None
    assert args.config == Path("/etc/closte-sync/shop.toml")
    # The store and socket the template unit gives the instance, as its daemon has them.
    assert os.environ["CLOSTE_SYNC_STORE_PATH"] == "/var/lib/closte-sync/shop/state.sqlite3"
    assert os.environ["CLOSTE_SYNC_SOCKET_PATH"] == str(tmp_path / "shop" / "control.sock")
    both = build_parser(only=command).parse_args(
        ["--config", "/tmp/x.toml", command, "--instance", "shop"]
    )
    assert apply_instance_config(both) == (
        "--config and --instance both name the configuration: give one"
    )


def test_once_with_an_instance_names_the_instance_configuration_it_could_not_read() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "closte_sync.daemon.cli", "once", "--instance", "nowhere-x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "/etc/closte-sync/nowhere-x.toml" in done.stderr


def unit_service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_template_unit_lays_out_what_the_clients_look_for() -> None:
    service = unit_service()
    paths = InstancePaths.of("shop", {})

    def expand(text: str) -> str:  # systemd's specifiers for a system unit
        return text.replace("%i", "shop").replace("%t", "/run").replace("%S", "/var/lib")

    exec_start = expand(service["ExecStart"]).split()
    assert exec_start[exec_start.index("--config") + 1] == str(paths.config)
    assert exec_start[-1] == "daemon"
    environment: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = expand(line.removeprefix("Environment=")).partition("=")
            environment[key] = value
    assert environment["CLOSTE_SYNC_SOCKET_PATH"] == str(paths.socket)
    assert environment["CLOSTE_SYNC_STORE_PATH"] == str(paths.store)
    assert service["StateDirectory"] == "closte-sync/%i"
    assert service["RuntimeDirectory"] == "closte-sync/%i"
    assert service["Type"] == "notify"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"


def test_systemd_accepts_the_template_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    program = shutil.which("closte-sync", path=str(Path(sys.executable).parent))
    if analyze is None or program is None:
        pytest.skip("systemd-analyze is not installed")
    # verify looks the program up in systemd's own fixed path; name this install's.
    unit = tmp_path / "closte-sync@shop.service"
    unit.write_text(UNIT.read_text().replace("ExecStart=closte-sync ", f"ExecStart={program} "))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
