"""`closte-sync config`: the effective configuration, origins, problems; secrets stay masked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from closte_sync.daemon.cli import main

CORPUS = Path(__file__).parent / "data" / "wpconfig"
CLOSTE_KEY = "c1f0e7d2a9b84c3e8f5a6b7c8d9e0f1a"
CLOSTE_DB_PASSWORD = "q8#Zr!v2$Lp0@mWn"
ENV_KEY = "env-key-abcdefghijklmnopqrstuvwxyz012345"
ENV_DB_PASSWORD = "env-db-password-9876"
CLOSTE_SYNC = Path(sys.executable).parent / "closte-sync"


def make_root(base: Path, corpus_file: str = "closte_multisite.php") -> Path:
    root = base / "html"
    (root / "wp-content").mkdir(parents=True)
    shutil.copyfile(CORPUS / corpus_file, root / "wp-config.php")
    return root


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CLOSTE_SYNC_"):
            monkeypatch.delenv(name)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> tuple[Path, Path]:
    """A WordPress root as the working directory, and a config file beside it."""
    root = make_root(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text("[closte]\nconcurrency = 8\n[checks]\ninterval_s = 120\n")
    monkeypatch.chdir(root / "wp-content")
    return root, config


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in (CLOSTE_KEY, CLOSTE_DB_PASSWORD, ENV_KEY, ENV_DB_PASSWORD):
            assert secret not in text


def line_for(stdout: str, key: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.split(" ", 1)[0] == key]
    return line


def test_table_shows_values_and_origins(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, config = site
    assert main(["--config", str(config), "config"]) == 0
    out, err = capsys.readouterr()
    assert_no_secrets(out, err)
    wp = root / "wp-config.php"
    assert line_for(out, "closte.api_key").split() == [
        "closte.api_key", "c1f0…", "(32", "chars)",
        "wp-config.php", f"{wp}:35", "(CLOSTE_CLIENT_API_KEY)",
    ]  # fmt: skip
    assert line_for(out, "closte.concurrency").split() == [
        "closte.concurrency", "8", "file", f"{config}:2"
    ]  # fmt: skip
    assert line_for(out, "checks.interval_s").split()[1:3] == ["120", "file"]
    assert line_for(out, "closte.rate_per_second").split()[1:] == ["2.0", "default"]
    assert "mysql://wpusr_k3x9q2@" in line_for(out, "database.url")
    assert line_for(out, "wordpress_root").split()[1:3] == [str(root), "discovered"]
    assert line_for(out, "wordpress.multisite").split()[1] == "true"
    assert out.startswith(f"config file: {config}\nwp-config:   {wp}\n")


def test_json_output(site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, config = site
    assert main(["--config", str(config), "config", "--json"]) == 0
    out, err = capsys.readouterr()
    assert_no_secrets(out, err)
    data = json.loads(out)
    assert data["config_file"] == str(config)
    assert data["wp_config"] == str(root / "wp-config.php")
    values = data["values"]
    assert values["closte.api_key"]["value"] == "c1f0… (32 chars)"
    assert values["closte.api_key"]["source"] == "wp-config"
    assert values["closte.concurrency"] == {
        "value": 8,
        "origin": f"file {config}:2",
        "source": "file",
    }
    assert values["checks.network_hosts"]["value"] == ["network.example.com"]
    assert values["domains_file.path"]["value"] is None
    assert values["database.url"]["value"].startswith("mysql://wpusr_k3x9q2@")
    assert data["problems"] == []


def test_secrets_from_the_environment_stay_masked(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _root, config = site
    monkeypatch.setenv("CLOSTE_SYNC_CLOSTE_API_KEY", ENV_KEY)
    monkeypatch.setenv(
        "CLOSTE_SYNC_DATABASE_URL", f"mysql://app:{ENV_DB_PASSWORD}@127.0.0.1:3306/app"
    )
    assert main(["--config", str(config), "config"]) == 0
    out, err = capsys.readouterr()
    assert_no_secrets(out, err)
    assert line_for(out, "closte.api_key").split()[1:] == [
        "env-…", "(40", "chars)", "env", "CLOSTE_SYNC_CLOSTE_API_KEY"
    ]  # fmt: skip
    assert line_for(out, "database.url").split()[1:] == [
        "mysql://app@127.0.0.1:3306/app", "password", "(20", "chars)",
        "env", "CLOSTE_SYNC_DATABASE_URL"
    ]  # fmt: skip
    assert "env-" not in line_for(out, "database.url")  # not even the password's first chars


def test_the_wp_config_password_shows_only_its_length(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _root, config = site
    assert main(["--config", str(config), "config"]) == 0
    text, _ = capsys.readouterr()
    assert main(["--config", str(config), "config", "--json"]) == 0
    data, _ = capsys.readouterr()
    shown = json.loads(data)["values"]["database.url"]["value"]
    assert shown.endswith(f"password ({len(CLOSTE_DB_PASSWORD)} chars)")
    assert f"password ({len(CLOSTE_DB_PASSWORD)} chars)" in line_for(text, "database.url")
    for out in (text, data):
        assert_no_secrets(out)
        assert CLOSTE_DB_PASSWORD[:2] not in out and CLOSTE_DB_PASSWORD[-2:] not in out


def test_problems_follow_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    root = make_root(tmp_path, "bedrock_getenv.php")
    monkeypatch.chdir(root)
    config = tmp_path / "empty.toml"
    config.write_text("")
    assert main(["--config", str(config), "config"]) == 0
    out, _err = capsys.readouterr()
    table, problems = out.split("\nproblems:\n")
    assert "closte.api_key" in table
    assert (
        f"error: {root / 'wp-config.php'}:23: DB_PASSWORD: value is a call to getenv(), "
        "not a literal" in problems
    )
    assert "set [database] url or CLOSTE_SYNC_DATABASE_URL instead" in problems


def test_configuration_error_exits_2_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f'[closte]\napi_key = "{ENV_KEY}"\n[checks]\ninterval_s = 1\n')
    assert main(["--config", str(config), "config"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{config}:4: [checks] interval_s: must be between 10 and 300, got 1" in err
    assert "Traceback" not in err
    assert_no_secrets(out, err)
    assert main(["--config", str(tmp_path / "missing.toml"), "config", "--json"]) == 2
    assert "missing.toml: the configuration file does not exist" in capsys.readouterr().err


def test_installed_command_in_a_wordpress_root(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSTE_SYNC_")}
    result = subprocess.run(
        [str(CLOSTE_SYNC), "config"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_no_secrets(result.stdout, result.stderr)
    assert line_for(result.stdout, "closte.api_key").split()[1:3] == ["c1f0…", "(32"]
    assert line_for(result.stdout, "wordpress_root").split()[1] == str(root)
    assert "wpdb_k3x9q2" in line_for(result.stdout, "database.url")
