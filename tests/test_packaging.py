"""The folders install as one package, `closte_sync`, in the layout DESIGN.md gives."""

from __future__ import annotations

import importlib
import tomllib
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
