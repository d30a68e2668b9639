"""The folders install as one package, `closte_sync`, in the layout DESIGN.md gives."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_FOLDERS = ("daemon", "tui", "shared", "sandbox")


def _declared_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def _package_folders() -> set[str]:
    found = set()
    for top in TOP_FOLDERS:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            found.add("closte_sync." + ".".join(rel.parts))
    return found


def test_every_package_folder_is_declared() -> None:
    # A folder missing from pyproject.toml would vanish from a non-editable install.
    assert _package_folders() == _declared_packages()


def test_top_level_folders_import_under_one_name() -> None:
    for top in TOP_FOLDERS:
        module = importlib.import_module(f"closte_sync.{top}")
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().parent == (ROOT / top).resolve()


def test_a_built_wheel_holds_every_package_and_the_command(tmp_path: Path) -> None:
    # A normal (non-editable) install ships what the wheel holds; build it offline.
    # Build from a copy, so the build leaves no build/ or egg-info in the work tree (and
    # no stale file from an earlier build can slip into this wheel).
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".typecheck",
            "build",
            "*.egg-info",
            "*_cache",
            ".hypothesis",
            "__pycache__",
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("closte_sync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "closte-sync = closte_sync.daemon.cli:main" in archive.read(entry_points).decode()
    for package in _declared_packages():
        folder = package.replace(".", "/")
        assert f"{folder}/__init__.py" in names, package
    for top in TOP_FOLDERS:
        assert f"closte_sync/{top}/py.typed" in names
    assert not any(n.startswith(("daemon/", "shared/", "tests/")) for n in names)
