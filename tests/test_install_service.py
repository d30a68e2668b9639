"""`closte-sync install-service` into a temporary root: idempotent to the byte, a config
skeleton that is never overwritten, host facts in the drop-in, no secret anywhere; and,
as a user service, the whole install followed by a passing doctor against the sandbox."""

from __future__ import annotations

import asyncio
import grp
import os
import sys
import tomllib
from pathlib import Path

import pytest

from closte_sync.daemon.cli import main
from closte_sync.daemon.config import load_config
from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.wordpress import SampleNetwork, build_network

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

API_KEY = "install-test-key-0123456789abcdef"
UNIT = Path("etc/systemd/system/closte-sync.service")
DROPIN = Path("etc/systemd/system/closte-sync.service.d/wordpress.conf")
CONFIG = Path("etc/closte-sync/config.toml")


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under root with its mode and, for files, its bytes."""
    found: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (info.st_mode, content)
    return found


@pytest.fixture
def network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SampleNetwork:
    built = build_network(tmp_path / "wp", api_key=API_KEY, mappings=[("a.example.com", 1)])
    monkeypatch.chdir(built.root)
    return built


def install(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> tuple[int, str]:
    status = main(["install-service", "--root", str(root), *extra])
    return status, capsys.readouterr().out


def test_installing_twice_gives_the_same_tree(
    network: SampleNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    first_status, first_out = install(capsys, root)
    first = tree(root)
    second_status, second_out = install(capsys, root)
    assert (first_status, second_status) == (0, 0)
    assert tree(root) == first
    assert f"wrote {root / UNIT}" in first_out
    assert f"unchanged {root / UNIT}" in second_out
    assert f"kept {root / CONFIG} (exists; never overwritten)" in second_out
    # Modes are set, not left to the umask.
    assert first[str(UNIT)][0] & 0o777 == 0o644
    assert first["var/lib/closte-sync"][0] & 0o777 == 0o750
    assert "next: systemctl daemon-reload && systemctl enable --now closte-sync" in first_out
    # With --root, nothing outside it runs: no doctor, no sysusers.
    assert "doctor" not in first_out
    assert "sysusers" not in first_out.replace("sysusers.d", "")


def test_the_config_names_the_wordpress_root_it_was_run_from(
    network: SampleNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    assert install(capsys, root)[0] == 0
    config = root / CONFIG
    assert tomllib.loads(config.read_text())["wordpress_root"] == str(network.root)
    # The daemon reads it as written, from anywhere.
    loaded = load_config(config, env={}, cwd=tmp_path)
    assert loaded.settings.wordpress_root == network.root
    assert loaded.settings.store.path == Path("/var/lib/closte-sync/state.sqlite3")
    assert loaded.settings.socket.path == Path("/run/closte-sync/control.sock")


def test_outside_wordpress_the_root_is_left_for_the_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    root = tmp_path / "root"
    status, out = install(capsys, root)
    assert status == 0
    assert "wordpress_root" not in tomllib.loads((root / CONFIG).read_text())
    assert f"no wp-config.php in {elsewhere} or above: set wordpress_root" in out
    assert "ReadOnlyPaths" not in (root / DROPIN).read_text()


def test_an_existing_config_is_never_overwritten(
    network: SampleNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    mine = (
        f'wordpress_root = "{network.root}"\n\n'
        "[database]\nwrite_back = false\ncreate_site_records = false\n"
    )
    (root / CONFIG).parent.mkdir(parents=True)
    (root / CONFIG).write_text(mine)
    assert install(capsys, root)[0] == 0
    assert (root / CONFIG).read_text() == mine
    # The drop-in follows the config the daemon will read: no writes, no write access.
    dropin = (root / DROPIN).read_text()
    assert f"ReadOnlyPaths=-{network.root}" in dropin
    assert "ReadWritePaths" not in dropin


def test_the_drop_in_grants_the_sqlite_folder_and_the_reading_group(
    network: SampleNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    network.wp_config.chmod(0o640)  # as on a host where only the web server's group reads
    root = tmp_path / "root"
    assert install(capsys, root)[0] == 0
    dropin = (root / DROPIN).read_text()
    assert f"ReadWritePaths=-{network.database.parent}" in dropin
    group = grp.getgrgid(network.wp_config.stat().st_gid).gr_name
    assert f"SupplementaryGroups={group}" in dropin


def test_dry_run_writes_nothing_and_shows_the_files(
    network: SampleNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    status, out = install(capsys, root, "--dry-run")
    assert status == 0
    assert not root.exists()
    assert f"would write {root / UNIT} (mode 0644):" in out
    assert "    Type=notify" in out
    assert f"would create {root / 'var/lib/closte-sync'}/ (mode 0750)" in out
    assert "dry run: nothing was written." in out


def test_no_secret_is_written_or_printed(
    network: SampleNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    status, out = install(capsys, root)
    assert status == 0
    assert API_KEY not in out
    for path in root.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
            # wp-config.php's DB_PASSWORD: the database password stays there too.
            assert b"not-used-with-sqlite" not in path.read_bytes(), path


def test_the_user_service_installs_twice_the_same(
    network: SampleNetwork,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/4242")
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "root"
    status, out = install(capsys, root, "--user")
    first = tree(root)
    assert install(capsys, root, "--user")[0] == status == 0
    assert tree(root) == first
    prefix = root / str(home).lstrip("/")
    unit = prefix / ".config/systemd/user/closte-sync.service"
    assert "ExecStart=" in unit.read_text()
    config = tomllib.loads((prefix / ".config/closte-sync/config.toml").read_text())
    assert config["store"]["path"] == f"{home}/.local/state/closte-sync/state.sqlite3"
    assert config["socket"]["path"] == "/run/user/4242/closte-sync/control.sock"
    assert (prefix / ".local/state/closte-sync").stat().st_mode & 0o777 == 0o700
    assert not (root / "etc").exists()  # no sysusers file, no system unit
    assert "systemctl --user daemon-reload && systemctl --user enable --now" in out


async def test_a_user_install_ends_with_a_passing_doctor(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    # The real command, as an admin without root runs it from the WordPress folder; the
    # doctor it runs at the end checks the installed config against the sandbox.
    network = build_network(
        tmp_path / "wp", api_key=closte_sandbox.api_key, mappings=[("a.example.com", 1)]
    )
    home = tmp_path / "home"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "CLOSTE_SYNC_CLOSTE_BASE_URL": closte_sandbox.api.url,
        "CLOSTE_SYNC_CLOSTE_RETRY_BUDGET": "0",
    }
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closte_sync.daemon.cli",
        "install-service",
        "--user",
        cwd=network.root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "closte-sync doctor:" in text
    assert "all checks passed" in text
    assert "next: systemctl --user daemon-reload" in text
    assert (home / ".config/systemd/user/closte-sync.service").is_file()
    assert closte_sandbox.api_key not in text
