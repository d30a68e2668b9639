"""The database source against a real SQLite file, as WordPress's SQLite integration keeps it.

Changes go through a separate sqlite3 connection (as PHP's would); the source notices them
through file notifications and ``PRAGMA data_version``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from db_fixtures import (
    SourceBehaviour,
    SQLiteDatabase,
    add_mapping,
    add_site,
    has,
    names,
    next_snapshot,
    seed_network,
    sqlite_database,
)

from closte_sync.daemon.settings import DatabaseConnection, DatabaseSettings
from closte_sync.daemon.sources.base import Source
from closte_sync.daemon.sources.database import DatabaseSource
from closte_sync.daemon.sources.database.sqlite import SQLiteBackend


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    with sqlite_database(tmp_path) as database:
        await seed_network(database)
        yield database


class TestSQLiteSource(SourceBehaviour):
    pass


async def test_a_prefix_other_than_wp_and_a_second_network(tmp_path: Path) -> None:
    with sqlite_database(tmp_path, prefix="cs7_", network_id=2) as db:
        await seed_network(db)
        assert db.tables.mappings == "cs7_wu_2_domain_mappings"
        mapping = await add_mapping(db, "second.example.com")
        source = DatabaseSource(db.settings())
        try:
            snapshot = await source.read()
        finally:
            await source.aclose()
        assert snapshot.healthy
        assert snapshot.domains["second.example.com"].place == f"cs7_wu_2_domain_mappings#{mapping}"


async def test_a_missing_file_is_unhealthy_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / ".ht.sqlite"
    source = DatabaseSource(
        DatabaseSettings(connection=DatabaseConnection(kind="sqlite", sqlite_path=missing))
    )
    try:
        snapshot = await next_snapshot(source.watch())
    finally:
        await source.aclose()
    assert not snapshot.healthy and snapshot.domains == {}
    assert str(missing) in snapshot.problems[0].place
    assert not missing.exists()


async def test_a_replaced_file_is_reopened(db: SQLiteDatabase, tmp_path: Path) -> None:
    # In rollback-journal mode: with WAL, SQLite itself would replay the old file's -wal
    # onto a file moved over it, for every connection, so no reader can follow such a move.
    db.conn.execute("PRAGMA journal_mode = DELETE")
    await add_mapping(db, "old.example.com")
    source = DatabaseSource(db.settings())
    stream = source.watch()
    try:
        await next_snapshot(stream, has("old.example.com"))
        # A restore: a new file moved over the old one (a new inode, not an edit).
        with sqlite_database(tmp_path, filename="restore.sqlite") as fresh:
            await seed_network(fresh)
            await add_mapping(fresh, "restored.example.com")
        db.conn.close()  # the site's own connections end with their requests
        (tmp_path / "restore.sqlite").replace(db.path)
        snapshot = await next_snapshot(stream, has("restored.example.com"))
        assert names(snapshot) == {"restored.example.com"}
    finally:
        await source.aclose()


async def test_changes_in_rollback_journal_mode_are_seen(db: SQLiteDatabase) -> None:
    db.conn.execute("PRAGMA journal_mode = DELETE")
    source = DatabaseSource(db.settings())
    stream = source.watch()
    try:
        assert names(await next_snapshot(stream)) == set()
        await add_mapping(db, "journal.example.com")
        await next_snapshot(stream, has("journal.example.com"))
    finally:
        await source.aclose()


async def test_commits_are_noticed_through_file_notifications(db: SQLiteDatabase) -> None:
    # With the safety poll an hour away, only the file watch can bring the change in time.
    source = DatabaseSource(db.settings(), safety_poll_s=3600)
    stream = source.watch()
    try:
        assert names(await next_snapshot(stream)) == set()
        for i in range(3):
            await add_mapping(db, f"notified{i}.example.com")
            await next_snapshot(stream, has(f"notified{i}.example.com"), timeout=5)
    finally:
        await source.aclose()


async def test_the_database_source_speaks_the_source_protocol(db: SQLiteDatabase) -> None:
    source: Source = DatabaseSource(db.settings())  # mypy checks the protocol here
    try:
        assert source.name == "database"
        assert (await source.read()).source == "database"
    finally:
        await source.aclose()


async def test_a_read_only_source_never_writes(db: SQLiteDatabase) -> None:
    await add_mapping(db, "kept.example.com", blog_id=1)
    await db.execute(
        "INSERT INTO {blogs} (site_id, domain, path) VALUES (1, 'new.network.test', '/')"
    )
    source = DatabaseSource(
        db.settings(write_back=False, create_site_records=False), new_sites_after=1
    )
    try:
        snapshot = await source.read()
        assert snapshot.domains["new.network.test"].origin == "site"
        assert await source.write_stage("kept.example.com", "done", True) == 0
        assert await source.write_stage("kept.example.com", "done", True, mapping_ids=[1]) == 0
    finally:
        await source.aclose()
    assert await db.query("SELECT domain, stage FROM {m}") == [("kept.example.com", "checking-dns")]


async def test_an_unreadable_column_is_a_problem_and_the_domain_still_counts(
    db: SQLiteDatabase,
) -> None:
    await add_mapping(db, "good.example.com")
    # SQLite keeps what it is given: text in an integer column, as a broken import leaves it.
    await db.execute(
        "INSERT INTO {m} (blog_id, domain, stage) VALUES ('abc', 'odd.example.com', 'checking-dns')"
    )
    source = DatabaseSource(db.settings(create_site_records=False))
    try:
        snapshot = await source.read()
    finally:
        await source.aclose()
    assert snapshot.healthy
    # Dropping the row would make the daemon remove a live alias over a cosmetic fault.
    assert names(snapshot) == {"good.example.com", "odd.example.com"}
    (problem,) = snapshot.problems
    assert problem.place == f"{db.tables.mappings}#2"
    assert "column blog_id" in problem.message and "abc" in problem.message


async def test_a_refused_site_record_keeps_the_read_healthy(db: SQLiteDatabase) -> None:
    # The database refuses the insert (as a user without INSERT would be refused).
    await db.execute(
        "CREATE TRIGGER refuse_inserts BEFORE INSERT ON {m}"
        " BEGIN SELECT RAISE(ABORT, 'INSERT command denied'); END"
    )
    await add_site(db, "shop.network.test")
    source = DatabaseSource(db.settings(), new_sites_after=1)
    try:
        snapshot = await source.read()
    finally:
        await source.aclose()
    assert snapshot.healthy
    assert snapshot.domains["shop.network.test"].origin == "site"
    (problem,) = snapshot.problems
    assert "could not create the record for new site" in problem.message
    assert "create_site_records" in problem.message


async def test_a_refused_site_record_is_tried_again_at_the_next_start(db: SQLiteDatabase) -> None:
    await db.execute(
        "CREATE TRIGGER refuse_inserts BEFORE INSERT ON {m}"
        " BEGIN SELECT RAISE(ABORT, 'INSERT command denied'); END"
    )
    refused = await add_site(db, "shop.network.test")
    await add_site(db, "gone.network.test", deleted=1)
    first = DatabaseSource(db.settings(), new_sites_after=1)
    try:
        assert (await first.read()).problems
        assert first.sites_mark == 1  # not passed: the site still has no record
    finally:
        await first.aclose()
    await db.execute("DROP TRIGGER refuse_inserts")  # the admin fixed the grant
    second = DatabaseSource(db.settings(), new_sites_after=first.sites_mark)
    try:
        snapshot = await second.read()
        assert snapshot.problems == ()
        assert snapshot.domains["shop.network.test"].mapping_id is not None
        assert second.sites_mark == refused + 1
    finally:
        await second.aclose()
    assert await db.query("SELECT blog_id, domain FROM {m}") == [(refused, "shop.network.test")]


async def test_a_stage_write_by_row_id_is_one_primary_key_lookup(db: SQLiteDatabase) -> None:
    backend = SQLiteBackend(db.path, db.tables, 1, writable=True)
    for form, expected in (([3, 9], "USING INTEGER PRIMARY KEY"), (None, "USING INDEX")):
        sql, args = backend.stage_update("done", True, spellings=("a.example.com",), ids=form)
        plan = await db.query(f"EXPLAIN QUERY PLAN {sql}", *args)
        details = " ".join(str(row[-1]) for row in plan)
        assert details.startswith(f"SEARCH {db.tables.mappings} {expected}"), details
