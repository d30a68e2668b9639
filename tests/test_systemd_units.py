"""The unit files: the shipped copies match the package's source of truth, and systemd's
own tools accept them (systemd-analyze verify, security --offline, systemd-sysusers)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from closte_sync.daemon.commands import install_service
from closte_sync.sandbox.wordpress import build_network

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
# The command `systemd-analyze verify` checks ExecStart= against: it must exist, so the
# copies verified here name the closte-sync script of the environment running the tests.
COMMAND = Path(sys.executable).parent / "closte-sync"
MAX_EXPOSURE = 2.0


def need(program: str) -> str:
    """The program's path; skip with the reason locally, fail under CI (it must run there)."""
    found = shutil.which(program)
    if found is None:
        message = f"{program} is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def analyze(*args: str, user: bool = False, runtime: Path | None = None) -> str:
    """Run systemd-analyze; return its stderr, failing the test on a non-zero exit."""
    env = dict(os.environ)
    if runtime is not None:
        # A --user manager looks up $XDG_RUNTIME_DIR even when only verifying a file.
        env["XDG_RUNTIME_DIR"] = str(runtime)
    command = [need("systemd-analyze"), *(["--user"] if user else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def unit_directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment; keys may repeat, so no configparser."""
    section = ""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key, value))
    return found


def one(text: str, section: str, key: str) -> str:
    values = [v for s, k, v in unit_directives(text) if (s, k) == (section, key)]
    assert len(values) == 1, f"{section}/{key}: {values}"
    return values[0]


def copy_for_verify(source: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = source.read_text().replace(str(install_service.REFERENCE_COMMAND), str(COMMAND))
    target = folder / "closte-sync.service"
    target.write_text(text)
    return target


def exposure(report: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", report)
    assert match, report
    return float(match.group(1))


def test_the_shipped_files_are_the_packages_rendering() -> None:
    # One source of truth: the texts in install_service; systemd/ holds them rendered for
    # /usr/local/bin/closte-sync, so a pip install and a copy by hand install the same unit.
    assert (SYSTEMD / "closte-sync.service").read_text() == install_service.render_system_unit()
    assert (SYSTEMD / "user" / "closte-sync.service").read_text() == (
        install_service.render_user_unit()
    )
    assert (SYSTEMD / "sysusers.d" / "closte-sync.conf").read_text() == install_service.SYSUSERS


def test_the_system_unit_says_what_the_daemon_needs() -> None:
    text = (SYSTEMD / "closte-sync.service").read_text()
    assert one(text, "Service", "Type") == "notify"
    assert one(text, "Service", "ExecStart") == "/usr/local/bin/closte-sync daemon"
    assert "-HUP" in one(text, "Service", "ExecReload")
    assert int(one(text, "Service", "WatchdogSec")) >= 10
    assert one(text, "Service", "Restart") == "on-failure"
    assert int(one(text, "Unit", "StartLimitBurst")) > 0
    # The daemon's defaults live in these folders (settings.py): store, socket, config.
    assert one(text, "Service", "StateDirectory") == "closte-sync"
    assert one(text, "Service", "RuntimeDirectory") == "closte-sync"
    assert one(text, "Service", "RuntimeDirectoryPreserve") == "restart"
    assert one(text, "Service", "ConfigurationDirectory") == "closte-sync"
    assert one(text, "Service", "User") == "closte-sync"
    assert one(text, "Service", "ProtectSystem") == "strict"
    assert one(text, "Service", "CapabilityBoundingSet") == ""
    assert one(text, "Service", "RestrictAddressFamilies") == "AF_UNIX AF_INET AF_INET6"
    # SIGTERM stops the daemon within 5 s; systemd must wait at least that long.
    assert int(one(text, "Service", "TimeoutStopSec")) > 5


def test_the_system_unit_verifies(tmp_path: Path) -> None:
    unit = copy_for_verify(SYSTEMD / "closte-sync.service", tmp_path)
    # Warnings (an unknown key, a bad value) go to stderr with exit 0: none are allowed.
    assert analyze("verify", "--man=no", str(unit)) == ""


def test_the_user_unit_verifies(tmp_path: Path) -> None:
    unit = copy_for_verify(SYSTEMD / "user" / "closte-sync.service", tmp_path / "units")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    assert analyze("verify", "--man=no", str(unit), user=True, runtime=runtime) == ""


def test_the_system_unit_is_rated_at_most_two(tmp_path: Path) -> None:
    unit = copy_for_verify(SYSTEMD / "closte-sync.service", tmp_path)
    report = analyze("security", "--offline=yes", str(unit))
    assert exposure(report) <= MAX_EXPOSURE, report


def test_an_installed_unit_with_its_drop_in_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The drop-in holds what install-service found on the host: it must verify too, and
    # keep the rating (it only narrows or grants paths).
    network = build_network(tmp_path / "wp", api_key="k" * 32)
    monkeypatch.chdir(network.root)
    root = tmp_path / "root"
    assert install_service_main("--root", str(root)) == 0
    units = root / "etc" / "systemd" / "system"
    dropin = (units / "closte-sync.service.d" / "wordpress.conf").read_text()
    assert f"ReadWritePaths=-{network.database.parent}" in dropin
    assert analyze("verify", "--man=no", str(units / "closte-sync.service")) == ""
    report = analyze("security", "--offline=yes", str(units / "closte-sync.service"))
    assert exposure(report) <= MAX_EXPOSURE, report


def test_sysusers_creates_the_dedicated_user(tmp_path: Path) -> None:
    program = need("systemd-sysusers")
    conf = SYSTEMD / "sysusers.d" / "closte-sync.conf"
    done = subprocess.run(
        [program, f"--root={tmp_path}", "--dry-run", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Creating user 'closte-sync'" in done.stdout + done.stderr


def test_the_readme_quotes_a_figure_within_the_bar() -> None:
    readme = (SYSTEMD / "README.md").read_text()
    match = re.search(r"exposure level .*?(\d+\.\d+)", readme, re.S)
    assert match, "systemd/README.md must quote systemd-analyze security's figure"
    assert float(match.group(1)) <= MAX_EXPOSURE


def install_service_main(*argv: str) -> int:
    from closte_sync.daemon.cli import main

    return main(["install-service", *argv])
