"""The database source against the real MariaDB/MySQL server on 127.0.0.1:3306."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import aiomysql
import pytest
from db_fixtures import (
    MYSQL_HOST,
    MYSQL_PORT,
    MySQLDatabase,
    SourceBehaviour,
    TcpRelay,
    add_mapping,
    add_site,
    has,
    kill_source_connections,
    mysql_database,
    names,
    next_snapshot,
)

from closte_sync.daemon.events import Level, MemorySink
from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.daemon.sources.database import DatabaseConfigError, DatabaseSource, TableNames
from closte_sync.daemon.sources.database.mysql import MySQLBackend
from closte_sync.shared.secret import Secret

pytestmark = pytest.mark.mysql


@pytest.fixture
async def db() -> AsyncIterator[MySQLDatabase]:
    async with mysql_database() as database:
        yield database


@pytest.fixture
async def open_mysql_source() -> AsyncIterator[Callable[..., DatabaseSource]]:
    opened: list[DatabaseSource] = []

    def make(
        db: MySQLDatabase,
        sink: MemorySink | None = None,
        *,
        connection: DatabaseConnection | None = None,
        **overrides: object,
    ) -> DatabaseSource:
        # Short backoff so outage tests recover quickly.
        settings = db.settings(**overrides)
        if connection is not None:
            settings = replace(settings, connection=connection)
        source = DatabaseSource(settings, None, sink, backoff_base_s=0.05, backoff_max_s=0.5)
        opened.append(source)
        return source

    yield make
    for source in opened:
        await source.aclose()


class TestMySQLSource(SourceBehaviour):
    pass


async def test_a_prefix_other_than_wp(open_mysql_source: Callable[..., DatabaseSource]) -> None:
    async with mysql_database(prefix="cs7_") as db:
        await add_mapping(db, "prefixed.example.com")
        assert db.tables.mappings == "cs7_wu_domain_mappings"
        snapshot = await open_mysql_source(db).read()
        assert snapshot.healthy and names(snapshot) == {"prefixed.example.com"}


async def test_a_second_network_reads_its_own_table(
    open_mysql_source: Callable[..., DatabaseSource],
) -> None:
    async with mysql_database(network_id=2) as db:
        assert db.tables.mappings == "wp_wu_2_domain_mappings"
        mapping = await add_mapping(db, "second.example.com")
        snapshot = await open_mysql_source(db).read()
        assert snapshot.domains["second.example.com"].place == f"wp_wu_2_domain_mappings#{mapping}"


def test_a_prefix_with_sql_in_it_is_refused() -> None:
    with pytest.raises(DatabaseConfigError, match="base_prefix"):
        TableNames.build("wp_`; DROP TABLE x; --")


async def test_reconnects_after_the_server_drops_the_connection(
    db: MySQLDatabase, open_mysql_source: Callable[..., DatabaseSource]
) -> None:
    await add_mapping(db, "before.example.com")
    sink = MemorySink()
    stream = open_mysql_source(db, sink).watch()
    await next_snapshot(stream, has("before.example.com"))
    assert await kill_source_connections(db) >= 1
    await add_mapping(db, "after.example.com")
    snapshot = await next_snapshot(stream, has("before.example.com", "after.example.com"))
    assert snapshot.healthy
    await sink.wait_for(lambda e: e.level is Level.ERROR and "unreachable" in e.message, 5)


async def test_an_outage_yields_unhealthy_snapshots_that_keep_the_last_domains(
    db: MySQLDatabase, open_mysql_source: Callable[..., DatabaseSource]
) -> None:
    await add_mapping(db, "kept.example.com")
    relay = TcpRelay(MYSQL_HOST, MYSQL_PORT)
    await relay.start()
    through_relay = DatabaseConnection(
        kind="mysql", name=db.name, user="root", host="127.0.0.1", port=relay.port
    )
    sink = MemorySink()
    source = open_mysql_source(db, sink, connection=through_relay)
    stream = source.watch()
    try:
        await next_snapshot(stream, has("kept.example.com"))
        await relay.cut()
        down = await next_snapshot(stream, lambda s: not s.healthy)
        assert names(down) == {"kept.example.com"}
        [problem] = down.problems
        assert f"127.0.0.1:{relay.port}" in problem.place
        await relay.restore()
        await add_mapping(db, "later.example.com")
        await next_snapshot(stream, has("kept.example.com", "later.example.com"), timeout=15)
        await sink.wait_for(lambda e: "reconnected" in e.message, 5)
    finally:
        await relay.cut()


async def test_an_unreachable_server_from_the_start_is_unhealthy_and_empty(
    db: MySQLDatabase, open_mysql_source: Callable[..., DatabaseSource]
) -> None:
    relay = TcpRelay(MYSQL_HOST, MYSQL_PORT)
    await relay.start()
    port = relay.port
    await relay.cut()  # the port is now closed: nothing listens there
    nowhere = DatabaseConnection(kind="mysql", name=db.name, user="root", port=port)
    source = open_mysql_source(db, connection=nowhere)
    snapshot = await next_snapshot(source.watch())
    assert not snapshot.healthy and snapshot.domains == {}
    assert "cannot connect" in snapshot.problems[0].message


async def test_the_password_never_reaches_a_problem_or_an_event(
    db: MySQLDatabase, open_mysql_source: Callable[..., DatabaseSource]
) -> None:
    password = "hunter2-very-secret-value"
    wrong = DatabaseConnection(
        kind="mysql",
        name=db.name,
        user="closte_sync_nobody",
        password=Secret(password),
        host=MYSQL_HOST,
        port=MYSQL_PORT,
    )
    sink = MemorySink()
    source = open_mysql_source(db, sink, connection=wrong)
    snapshot = await next_snapshot(source.watch(), lambda s: not s.healthy)
    text = repr(snapshot) + repr(sink.events) + repr(source.settings)
    assert "Access denied" in snapshot.problems[0].message
    assert password not in text


async def _wait_until_stale(db: MySQLDatabase, seconds: int, timeout: float = 10.0) -> None:
    """Poll (with a deadline) until the mappings table's UPDATE_TIME is older than ``seconds``."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await db.query(
                "SELECT UPDATE_TIME < NOW() - INTERVAL ? SECOND FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                seconds,
                db.tables.mappings,
            )
            if rows and rows[0][0]:
                return
            await asyncio.sleep(0.1)  # polling interval of this wait, not a synchronisation


async def test_quiet_polls_skip_the_checksum_but_every_commit_is_seen(
    db: MySQLDatabase,
) -> None:
    settings = db.settings()
    assert settings.connection is not None
    backend = MySQLBackend(settings.connection, db.tables, 1, fresh_s=1, full_every=3)
    writer = await aiomysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user="root", db=db.name, autocommit=False
    )
    try:
        await add_mapping(db, "first.example.com")
        await _wait_until_stale(db, 1)
        quiet = await backend.fingerprint()
        runs = backend.checksums_run
        assert [await backend.fingerprint() for _ in range(6)] == [quiet] * 6
        assert backend.checksums_run == runs + 2  # the safety checksum, every 3rd poll

        # A transaction held open past the fresh window: MariaDB stamps UPDATE_TIME when it
        # commits (with the statement's time), so the next poll still sees it.
        async with writer.cursor() as cur:
            await cur.execute(
                f"INSERT INTO {db.tables.mappings} (blog_id, domain) VALUES (2, 'late.example.com')"
            )
        await _wait_until_stale(db, 1)
        assert await backend.fingerprint() == quiet  # uncommitted: nothing to see yet
        await writer.commit()
        late = await backend.fingerprint()
        assert late != quiet

        await add_mapping(db, "prompt.example.com")
        assert await backend.fingerprint() != late
    finally:
        writer.close()
        await backend.close()


MARIADB_SOCKET = Path("/run/mysqld/mysqld.sock")


@pytest.mark.skipif(not MARIADB_SOCKET.exists(), reason=f"no server socket at {MARIADB_SOCKET}")
async def test_connects_through_the_unix_socket(
    db: MySQLDatabase, open_mysql_source: Callable[..., DatabaseSource]
) -> None:
    await add_mapping(db, "socket.example.com")
    over_socket = DatabaseConnection(
        kind="mysql", name=db.name, user="root", unix_socket=str(MARIADB_SOCKET)
    )
    source = open_mysql_source(db, connection=over_socket)
    snapshot = await source.read()
    assert snapshot.healthy and names(snapshot) == {"socket.example.com"}


async def test_write_access_is_checked_with_the_users_real_grants(db: MySQLDatabase) -> None:
    user = f"cs_ro_{db.name[-8:]}"
    password = "read-only-pw-0123"
    await db.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
    try:
        await db.execute(f"GRANT SELECT ON `{db.name}`.* TO '{user}'@'%%'")
        read_only = DatabaseConnection(
            kind="mysql",
            name=db.name,
            user=user,
            password=Secret(password),
            host=MYSQL_HOST,
            port=MYSQL_PORT,
        )
        limited = DatabaseSource(replace(db.settings(), connection=read_only))
        full = DatabaseSource(db.settings())
        try:
            assert (await limited.read()).healthy  # reading works
            refused = await limited.write_access_problem(insert=True, update=False)
            assert refused is not None and "INSERT command denied" in refused
            assert password not in refused
            assert await full.write_access_problem(insert=True, update=True) is None
            await db.execute(f"GRANT UPDATE ON `{db.name}`.* TO '{user}'@'%%'")
            # Write-back alone needs UPDATE only: the user now has what that takes.
            assert await limited.write_access_problem(insert=False, update=True) is None
        finally:
            await limited.aclose()
            await full.aclose()
        # The probe changed nothing.
        assert await db.query("SELECT COUNT(*) FROM {m}") == [(0,)]
    finally:
        await db.execute(f"DROP USER '{user}'@'%%'")


async def test_a_stage_write_by_row_id_uses_the_primary_key(db: MySQLDatabase) -> None:
    # Enough rows that a full scan would show as one, and the domain index a real choice.
    async with db.conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO {db.tables.mappings} (blog_id, domain) VALUES (%s, %s)",
            [(i, f"site{i}.example.com") for i in range(2, 402)],
        )
        await cur.execute(f"ANALYZE TABLE {db.tables.mappings}")
    settings = db.settings()
    assert settings.connection is not None
    backend = MySQLBackend(settings.connection, db.tables, 1)
    spellings = ("site7.example.com",)

    async def plan(ids: list[int] | None) -> dict[str, object]:
        sql, args = backend.stage_update("done", True, spellings=spellings, ids=ids)
        async with db.conn.cursor(aiomysql.DictCursor) as cur:
            await cur.execute(f"EXPLAIN {sql}", args)
            [row] = await cur.fetchall()
        return dict(row)

    for ids in ([6], [6, 7, 300]):
        by_id = await plan(ids)
        assert by_id["key"] == "PRIMARY" and by_id["type"] in ("const", "range"), by_id
    by_name = await plan(None)
    assert by_name["key"] == "domain" and by_name["type"] in ("ref", "range"), by_name


async def test_a_site_record_refused_by_the_grants_is_made_at_a_later_start(
    db: MySQLDatabase,
) -> None:
    user = f"cs_ni_{db.name[-8:]}"
    password = "no-insert-pw-0123"
    await db.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password}'")
    try:
        await db.execute(f"GRANT SELECT, UPDATE ON `{db.name}`.* TO '{user}'@'%%'")
        limited = replace(
            db.settings(),
            connection=DatabaseConnection(
                kind="mysql",
                name=db.name,
                user=user,
                password=Secret(password),
                host=MYSQL_HOST,
                port=MYSQL_PORT,
            ),
        )
        blog = await add_site(db, "shop.network.test")
        first = DatabaseSource(limited, new_sites_after=1)
        try:
            snapshot = await first.read()
        finally:
            await first.aclose()
        assert snapshot.healthy
        [problem] = snapshot.problems
        assert "INSERT command denied" in problem.message
        assert first.sites_mark == 1  # the site still waits for its record

        await db.execute(f"GRANT INSERT ON `{db.name}`.* TO '{user}'@'%%'")
        second = DatabaseSource(limited, new_sites_after=first.sites_mark)
        try:
            created = (await second.read()).domains["shop.network.test"]
        finally:
            await second.aclose()
        assert created.mapping_id is not None and second.sites_mark == blog
        rows = await db.query("SELECT id, blog_id, domain FROM {m}")
        assert rows == [(created.mapping_id, blog, "shop.network.test")]
    finally:
        await db.execute(f"DROP USER '{user}'@'%%'")
