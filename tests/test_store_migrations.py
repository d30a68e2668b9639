"""Opening the store: file safety, versioned migrations, refusing files it must not touch."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store import (
    SCHEMA_VERSION,
    NotAStoreError,
    SchemaTooNewError,
    StoreError,
    migrations,
    open_store,
)
from closte_sync.daemon.store.database import APPLICATION_ID, connect, prepare_path
from closte_sync.daemon.store.migrations import MIGRATIONS, Migration, migrate


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def _fingerprint(path: Path) -> tuple[str, int, int]:
    data = path.read_bytes()
    info = path.stat()
    return hashlib.sha256(data).hexdigest(), stat.S_IMODE(info.st_mode), info.st_mtime_ns


async def test_fresh_file_is_private_wal_and_fully_migrated(tmp_path: Path) -> None:
    path = tmp_path / "var" / "closte-sync" / "state.sqlite3"
    async with await open_store(StoreSettings(path=path)) as store:
        assert await store.schema_version() == SCHEMA_VERSION
    assert _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    assert _pragma(path, "journal_mode") == "wal"
    assert _pragma(path, "user_version") == SCHEMA_VERSION
    assert _pragma(path, "application_id") == APPLICATION_ID


async def test_connections_enforce_foreign_keys_and_wait_on_locks(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    prepare_path(path)
    db = await connect(path, busy_timeout_ms=1234, synchronous="FULL")
    try:
        assert await migrate(db)
        for pragma, expected in (("foreign_keys", 1), ("busy_timeout", 1234), ("synchronous", 2)):
            row = await db.fetch_one("test", f"PRAGMA {pragma}")
            assert row is not None and row[0] == expected, pragma
        with pytest.raises(StoreError, match="FOREIGN KEY"):
            async with db.transaction("inserting an orphan stage") as conn:
                await conn.execute(
                    "INSERT INTO stages (domain, stage, stage_since) VALUES ('nowhere.test', "
                    "'checking-dns', 0)"
                )
    finally:
        await db.close()


async def test_existing_file_with_loose_permissions_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with await open_store(StoreSettings(path=path)):
        pass
    path.chmod(0o644)
    async with await open_store(StoreSettings(path=path)):
        pass
    assert _mode(path) == 0o600


async def test_old_file_upgrades_in_order_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    prepare_path(path)
    db = await connect(path, busy_timeout_ms=1000, synchronous="FULL")
    try:
        applied = await migrate(db, target=1)
        assert [step.version for step in applied] == [1]
        async with db.transaction("seeding a version-1 ledger") as conn:
            await conn.execute(
                "INSERT INTO domains (domain, wildcard, state, origin, added_by_us, first_seen, "
                "last_change) VALUES ('old.example.com', 0, 'held', 'file', 1, 1.0, 2.0)"
            )
    finally:
        await db.close()
    assert _pragma(path, "user_version") == 1

    async with await open_store(StoreSettings(path=path)) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        entry = await store.ledger.get("old.example.com")
        assert entry is not None and entry.state == "held" and entry.added_by_us
        # Tables of the later steps exist and work.
        assert await store.stages.get("old.example.com") is None
        assert await store.event_log.count() == 0


async def test_each_step_commits_alone_and_a_failing_step_leaves_the_version_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.sqlite3"
    prepare_path(path)
    broken = Migration(
        SCHEMA_VERSION + 1,
        "a step that fails half-way",
        ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, broken))
    db = await connect(path, busy_timeout_ms=1000, synchronous="FULL")
    try:
        with pytest.raises(StoreError, match=f"migrating to schema version {broken.version}"):
            await migrate(db, target=broken.version)
        row = await db.fetch_one("test", "PRAGMA user_version")
        assert row is not None and row[0] == SCHEMA_VERSION
        half = await db.fetch_one("test", "SELECT 1 FROM sqlite_master WHERE name = 'half_done'")
        assert half is None
    finally:
        await db.close()


async def test_newer_file_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    async with await open_store(StoreSettings(path=path)) as store:
        await store.ledger.want("keep.example.com", "file")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    path.chmod(0o640)  # a refused file keeps even its permissions
    before = _fingerprint(path)

    with pytest.raises(SchemaTooNewError) as caught:
        await open_store(StoreSettings(path=path))

    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 3}" in message
    assert f"({SCHEMA_VERSION})" in message
    assert "upgrade closte-sync" in message
    assert _fingerprint(path) == before
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["store.sqlite3"]  # no -wal, -shm


async def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / ".ht.sqlite"  # WordPress's SQLite database, configured by mistake
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE wp_options (option_name TEXT, option_value TEXT)")
    conn.commit()
    conn.close()
    before = _fingerprint(path)
    with pytest.raises(NotAStoreError, match=r"\.ht\.sqlite: not a closte-sync store"):
        await open_store(StoreSettings(path=path))
    assert _fingerprint(path) == before


async def test_another_applications_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 42")
    conn.close()
    with pytest.raises(NotAStoreError, match="application id 0x2a"):
        await open_store(StoreSettings(path=path))


async def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database, it is a note\n" * 200)
    before = _fingerprint(path)
    with pytest.raises(NotAStoreError, match=r"notes\.txt: not a closte-sync store"):
        await open_store(StoreSettings(path=path))
    assert _fingerprint(path) == before


async def test_a_folder_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(StoreError, match=r"blocker/state\.sqlite3: cannot create the store"):
        await open_store(StoreSettings(path=blocker / "state.sqlite3"))


async def test_two_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    first, second = await asyncio.gather(
        open_store(StoreSettings(path=path)), open_store(StoreSettings(path=path))
    )
    try:
        assert await first.schema_version() == SCHEMA_VERSION
        await first.ledger.want("both.example.com", "file")
        entry = await second.ledger.get("both.example.com")
        assert entry is not None
    finally:
        await first.aclose()
        await second.aclose()
