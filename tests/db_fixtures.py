"""Throwaway multisite databases for the database source's tests (MariaDB and SQLite).

Each test gets a fresh database built from the real table definitions in tests/sql/, with
the network's main site in place. Tests change data through a separate connection, as
WordPress's PHP would, and wait on the source's next snapshot with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import aiomysql
import pymysql
import pytest

from closte_sync.daemon.events import EventSink, Level, MemorySink
from closte_sync.daemon.settings import DatabaseConnection, DatabaseSettings, WordPressFacts
from closte_sync.daemon.sources.base import SourceSnapshot
from closte_sync.daemon.sources.database import DatabaseSource, TableNames

SQL_DIR = Path(__file__).parent / "sql"
MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306
MAIN_DOMAIN = "network.test"


def _schema(kind: str, tables: TableNames, prefix: str) -> list[str]:
    text = (SQL_DIR / f"{kind}.sql").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    body = "\n".join(lines).replace("{prefix}", prefix).replace("{mappings}", tables.mappings)
    return [stmt.strip() for stmt in body.split(";") if stmt.strip()]


class TestDatabase(Protocol):
    """What the shared behaviour tests need from either engine."""

    tables: TableNames

    def settings(self, **overrides: Any) -> DatabaseSettings: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement (``?`` placeholders, ``{m}``/``{blogs}``/... table names);
        returns the last insert id."""

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...


class MySQLDatabase:
    def __init__(self, name: str, tables: TableNames, conn: Any, network_id: int) -> None:
        self.name = name
        self.tables = tables
        self.conn = conn
        self.network_id = network_id

    def settings(self, **overrides: Any) -> DatabaseSettings:
        connection = DatabaseConnection(
            kind="mysql", name=self.name, user="root", host=MYSQL_HOST, port=MYSQL_PORT
        )
        base = DatabaseSettings(
            connection=connection,
            base_prefix=self.tables.blogs.removesuffix("blogs"),
            network_id=self.network_id,
            poll_s=0.05,
        )
        return replace(base, **overrides)

    def _sql(self, sql: str) -> str:
        return _names(sql, self.tables).replace("?", "%s")

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.conn.cursor() as cur:
            await cur.execute(self._sql(sql), args)
            return int(cur.lastrowid or 0)

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(self._sql(sql), args)
            return list(await cur.fetchall())


class SQLiteDatabase:
    """Changes go through Python's sqlite3 module: another connection, as PHP's PDO is."""

    def __init__(self, path: Path, tables: TableNames, network_id: int) -> None:
        self.path = path
        self.tables = tables
        self.network_id = network_id
        self.conn = sqlite3.connect(path, isolation_level=None)

    def settings(self, **overrides: Any) -> DatabaseSettings:
        base = DatabaseSettings(
            connection=DatabaseConnection(kind="sqlite", sqlite_path=self.path),
            base_prefix=self.tables.blogs.removesuffix("blogs"),
            network_id=self.network_id,
            poll_s=0.05,
        )
        return replace(base, **overrides)

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = self.conn.execute(_names(sql, self.tables), args)
        return int(cursor.lastrowid or 0)

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(_names(sql, self.tables), args).fetchall())


def _names(sql: str, tables: TableNames) -> str:
    return (
        sql.replace("{m}", tables.mappings)
        .replace("{blogs}", tables.blogs)
        .replace("{sitemeta}", tables.sitemeta)
        .replace("{site}", tables.site)
    )


async def seed_network(db: TestDatabase) -> None:
    """The network and its main site, as a fresh multisite install has them."""
    await db.execute("INSERT INTO {site} (id, domain, path) VALUES (1, ?, '/')", MAIN_DOMAIN)
    await db.execute(
        "INSERT INTO {blogs} (blog_id, site_id, domain, path, registered, last_updated)"
        " VALUES (1, 1, ?, '/', '2024-01-01 00:00:00', '2024-01-01 00:00:00')",
        MAIN_DOMAIN,
    )


async def add_mapping(
    db: TestDatabase,
    domain: str,
    *,
    blog_id: int = 2,
    active: int = 1,
    primary: int = 0,
    stage: str = "checking-dns",
) -> int:
    return await db.execute(
        "INSERT INTO {m} (blog_id, domain, active, primary_domain, secure, stage,"
        " date_created, date_modified) VALUES (?, ?, ?, ?, 0, ?,"
        " '2024-01-02 03:04:05', '2024-01-02 03:04:05')",
        blog_id,
        domain,
        active,
        primary,
        stage,
    )


async def add_site(
    db: TestDatabase,
    domain: str,
    *,
    path: str = "/",
    site_id: int = 1,
    archived: int = 0,
    spam: int = 0,
    deleted: int = 0,
) -> int:
    return await db.execute(
        "INSERT INTO {blogs} (site_id, domain, path, registered, last_updated, archived, spam,"
        " deleted) VALUES (?, ?, ?, '2024-01-01 00:00:00', '2024-01-01 00:00:00', ?, ?, ?)",
        site_id,
        domain,
        path,
        archived,
        spam,
        deleted,
    )


async def set_network_settings(db: TestDatabase, serialized: str, network_id: int = 1) -> None:
    await db.execute(
        "DELETE FROM {sitemeta} WHERE site_id = ? AND meta_key = 'wp-ultimo_v2_settings'",
        network_id,
    )
    await db.execute(
        "INSERT INTO {sitemeta} (site_id, meta_key, meta_value)"
        " VALUES (?, 'wp-ultimo_v2_settings', ?)",
        network_id,
        serialized,
    )


async def table_contents(db: TestDatabase, table: str) -> list[tuple[Any, ...]]:
    return await db.query(f"SELECT * FROM {table} ORDER BY 1")


# -- MariaDB ------------------------------------------------------------------------------


async def mysql_root() -> Any:
    """A root connection to the local server, or skip (fail under CI=true) when it is down."""
    try:
        return await asyncio.wait_for(
            aiomysql.connect(
                host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", autocommit=True
            ),
            5,
        )
    except (pymysql.err.Error, OSError, TimeoutError) as exc:
        reason = f"MariaDB/MySQL not reachable on {MYSQL_HOST}:{MYSQL_PORT} as root: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: the server must be there)")
        pytest.skip(reason)


@contextlib.asynccontextmanager
async def mysql_database(prefix: str = "wp_", network_id: int = 1) -> AsyncIterator[MySQLDatabase]:
    root = await mysql_root()
    name = f"closte_sync_t_{secrets.token_hex(6)}"
    tables = TableNames.build(prefix, network_id)
    try:
        async with root.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            await cur.execute(f"USE `{name}`")
            for statement in _schema("mysql", tables, prefix):
                await cur.execute(statement)
        db = MySQLDatabase(name, tables, root, network_id)
        await seed_network(db)
        yield db
    finally:
        with contextlib.suppress(pymysql.err.Error):
            async with root.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()


async def kill_source_connections(db: MySQLDatabase) -> int:
    """Drop every other connection to the test database, as a server restart would."""
    rows = await db.query(
        "SELECT id FROM information_schema.PROCESSLIST WHERE db = ? AND id <> CONNECTION_ID()",
        db.name,
    )
    for (connection_id,) in rows:
        with contextlib.suppress(pymysql.err.Error):
            await db.execute(f"KILL CONNECTION {int(connection_id)}")
    return len(rows)


# -- SQLite -------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_database(
    directory: Path, prefix: str = "wp_", network_id: int = 1, filename: str = ".ht.sqlite"
) -> Iterator[SQLiteDatabase]:
    path = directory / filename
    tables = TableNames.build(prefix, network_id)
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    for statement in _schema("sqlite", tables, prefix):
        setup.execute(statement)
    setup.close()
    db = SQLiteDatabase(path, tables, network_id)
    try:
        yield db
    finally:
        db.conn.close()


# -- waiting on snapshots ---------------------------------------------------------------


async def next_snapshot(
    stream: AsyncIterator[SourceSnapshot],
    predicate: Callable[[SourceSnapshot], bool] = lambda _s: True,
    timeout: float = 10.0,
) -> SourceSnapshot:
    """The first snapshot from ``stream`` that satisfies ``predicate``, within ``timeout``."""

    async def wait() -> SourceSnapshot:
        async for snapshot in stream:
            if predicate(snapshot):
                return snapshot
        raise AssertionError("the snapshot stream ended")

    return await asyncio.wait_for(wait(), timeout)


def names(snapshot: SourceSnapshot) -> set[str]:
    return set(snapshot.domains)


def has(*domains: str) -> Callable[[SourceSnapshot], bool]:
    return lambda s: s.healthy and set(domains) <= set(s.domains)


def lacks(*domains: str) -> Callable[[SourceSnapshot], bool]:
    return lambda s: s.healthy and not (set(domains) & set(s.domains))


# -- a loopback TCP relay, to make the server vanish and come back -------------------------


class TcpRelay:
    """Forwards 127.0.0.1:<port> to the database; ``cut()`` drops every link and refuses new
    ones until ``restore()``, as a network outage or a restarting server would."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def restore(self) -> None:
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._links.difference_update((writer, up_writer))


# -- behaviour both engines must show ------------------------------------------------------

SETTINGS_120 = 'a:2:{s:18:"dns_check_interval";i:120;s:13:"enable_domain";b:1;}'


class SourceBehaviour:
    """Tests shared by the MariaDB and SQLite modules; each provides a ``db`` fixture."""

    @pytest.fixture
    async def open_source(self) -> AsyncIterator[Callable[..., DatabaseSource]]:
        opened: list[DatabaseSource] = []

        def make(
            db: TestDatabase, sink: EventSink | None = None, **overrides: Any
        ) -> DatabaseSource:
            wordpress = overrides.pop("wordpress", None)
            # As if the source had watched since the network was made: every site after
            # the main one (blog 1) counts as new unless a test says otherwise.
            after = overrides.pop("new_sites_after", 1)
            source = DatabaseSource(
                db.settings(**overrides), wordpress, sink, new_sites_after=after
            )
            opened.append(source)
            return source

        yield make
        for source in opened:
            await source.aclose()

    async def test_read_gives_every_mapping_row_with_its_fields(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        first = await add_mapping(db, "Shop.Example.COM", blog_id=3, primary=1, stage="done")
        second = await add_mapping(db, "off.example.org", blog_id=4, active=0)
        snapshot = await open_source(db, create_site_records=False).read()
        assert snapshot.healthy and snapshot.source == "database"
        assert names(snapshot) == {"shop.example.com", "off.example.org"}
        shop = snapshot.domains["shop.example.com"]
        assert (shop.origin, shop.active, shop.blog_id, shop.mapping_id) == (
            "database",
            True,
            3,
            first,
        )
        assert (shop.stage, shop.primary, shop.place) == (
            "done",
            True,
            f"{db.tables.mappings}#{first}",
        )
        off = snapshot.domains["off.example.org"]
        assert (off.active, off.mapping_id, off.primary) == (False, second, False)

    async def test_international_names_are_kept_in_ascii_form(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_mapping(db, "bücher.example")
        snapshot = await open_source(db).read()
        assert names(snapshot) == {"xn--bcher-kva.example"}

    async def test_watch_follows_inserts_deletes_edits_and_active_flips(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        kept = await add_mapping(db, "kept.example.com")
        stream = open_source(db).watch()
        first = await next_snapshot(stream)
        assert names(first) == {"kept.example.com"}

        added = await add_mapping(db, "new.example.com")
        await next_snapshot(stream, has("new.example.com"))

        # A direct UPDATE that leaves date_modified alone must still be seen.
        await db.execute("UPDATE {m} SET domain = 'renamed.example.com' WHERE id = ?", added)
        snapshot = await next_snapshot(stream, has("renamed.example.com"))
        assert "new.example.com" not in snapshot.domains

        await db.execute("UPDATE {m} SET active = 0 WHERE id = ?", kept)
        snapshot = await next_snapshot(
            stream, lambda s: s.healthy and not s.domains["kept.example.com"].active
        )
        assert names(snapshot) == {"kept.example.com", "renamed.example.com"}

        await db.execute("DELETE FROM {m} WHERE id = ?", added)
        snapshot = await next_snapshot(stream, lacks("renamed.example.com"))
        assert names(snapshot) == {"kept.example.com"}

    async def test_watch_sees_the_primary_flag_move_between_two_rows(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        # Names of the same length: a checksum that is linear in the row bytes (an XOR of
        # CRC32s) would not see two rows trade a flag.
        one = await add_mapping(db, "shop1.example.com", blog_id=5, primary=1)
        two = await add_mapping(db, "shop2.example.com", blog_id=5, primary=0)
        stream = open_source(db).watch()
        assert (await next_snapshot(stream)).domains["shop1.example.com"].primary
        await db.execute("UPDATE {m} SET primary_domain = 0 WHERE id = ?", one)
        await db.execute("UPDATE {m} SET primary_domain = 1 WHERE id = ?", two)
        await next_snapshot(stream, lambda s: s.domains["shop2.example.com"].primary)

    async def test_active_only_keeps_only_active_rows(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_mapping(db, "on.example.com")
        off = await add_mapping(db, "off.example.com", active=0)
        stream = open_source(db, active_only=True).watch()
        assert names(await next_snapshot(stream)) == {"on.example.com"}
        await db.execute("UPDATE {m} SET active = 1 WHERE id = ?", off)
        await next_snapshot(stream, has("off.example.com"))

    async def test_a_bad_row_is_a_problem_naming_the_row_and_the_rest_still_count(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_mapping(db, "good.example.com")
        bad = await add_mapping(db, "http://bad.example.com/path")
        sink = MemorySink()
        snapshot = await open_source(db, sink).read()
        assert snapshot.healthy
        assert names(snapshot) == {"good.example.com"}
        [problem] = snapshot.problems
        assert problem.place == f"{db.tables.mappings}#{bad}"
        assert "http://bad.example.com/path" in problem.message
        event = await sink.wait_for(lambda e: e.kind == "database" and "#" in e.message, 2)
        assert f"#{bad}" in event.message

    async def test_a_new_site_without_a_mapping_is_desired_but_not_written_when_told_not_to(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        blog = await add_site(db, "shop.network.test")
        snapshot = await open_source(db, create_site_records=False).read()
        assert names(snapshot) == {"shop.network.test"}  # not the main site's own domain
        site = snapshot.domains["shop.network.test"]
        assert (site.origin, site.blog_id, site.active, site.primary, site.stage) == (
            "site",
            blog,
            True,
            True,
            "checking-dns",
        )
        assert site.mapping_id is None
        assert await db.query("SELECT COUNT(*) FROM {m}") == [(0,)]

    async def test_a_new_site_gets_the_plugins_record_once(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        blog = await add_site(db, "shop.network.test")
        sink = MemorySink()
        source = open_source(db, sink)
        snapshot = await source.read()
        site = snapshot.domains["shop.network.test"]
        assert site.origin == "site" and site.mapping_id is not None
        rows = await db.query(
            "SELECT id, blog_id, domain, active, primary_domain, secure, stage FROM {m}"
        )
        assert rows == [(site.mapping_id, blog, "shop.network.test", 1, 1, 0, "checking-dns")]
        again = await source.read()
        assert again.domains["shop.network.test"].origin == "database"
        assert await db.query("SELECT COUNT(*) FROM {m}") == [(1,)]
        await sink.wait_for(lambda e: "created the domain record" in e.message, 2)

    async def test_which_sites_count_as_new(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_site(db, "live.network.test")
        await add_site(db, "gone.network.test", deleted=1)
        await add_site(db, "spam.network.test", spam=1)
        await add_site(db, "archived.network.test", archived=1)
        await add_site(db, "other-network.test", site_id=9)
        await add_site(db, MAIN_DOMAIN, path="/blog/")  # a subdirectory site: no own domain
        mapped = await add_site(db, "mapped.network.test")
        await add_mapping(db, "mapped.network.test", blog_id=mapped, active=0)
        snapshot = await open_source(db, create_site_records=False).read()
        sites = {n for n, d in snapshot.domains.items() if d.origin == "site"}
        assert sites == {"live.network.test"}
        assert snapshot.domains["mapped.network.test"].origin == "database"

    async def test_a_site_needs_a_record_when_no_row_has_its_blog_id(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        # The plugin's test is the blog_id, not the name: a site whose blog already has a
        # row (under any domain) gets nothing; a site whose name another blog maps gets its
        # own record; so does each of two sites on one domain.
        renamed = await add_site(db, "renamed.network.test")
        await add_mapping(db, "custom.example.org", blog_id=renamed)
        await add_mapping(db, "taken.network.test", blog_id=1)
        taken = await add_site(db, "taken.network.test")
        twin = await add_site(db, "twin.example.net")
        copy = await add_site(db, "twin.example.net", path="/copy/")
        snapshot = await open_source(db).read()
        assert snapshot.healthy, snapshot.problems
        rows = await db.query("SELECT blog_id, domain FROM {m} ORDER BY id")
        assert [(int(b), str(d)) for b, d in rows] == [
            (renamed, "custom.example.org"),
            (1, "taken.network.test"),
            (taken, "taken.network.test"),
            (twin, "twin.example.net"),
            (copy, "twin.example.net"),
        ]
        assert "renamed.network.test" not in snapshot.domains
        # A name some row already maps stays that row's in the desired set.
        assert snapshot.domains["taken.network.test"].blog_id == 1

    async def test_domain_current_site_is_not_a_new_site(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_site(db, "www.network.test")
        facts = WordPressFacts(subdomain_install=True, domain_current_site="www.network.test")
        snapshot = await open_source(db, wordpress=facts, create_site_records=False).read()
        assert names(snapshot) == set()

    async def test_only_sites_made_while_watching_count_as_new(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        # The plugin makes records when a site is created, not for the sites already there.
        old = await add_site(db, "old.network.test")
        source = open_source(db, new_sites_after=None, create_site_records=False)
        assert source.sites_mark is None
        first = await source.read()
        assert "old.network.test" not in first.domains
        assert source.sites_mark == old
        fresh = await add_site(db, "fresh.network.test")
        second = await source.read()
        assert second.domains["fresh.network.test"].origin == "site"
        assert "old.network.test" not in second.domains
        assert source.sites_mark == old  # fresh still has no record: it holds the mark
        await add_mapping(db, "fresh.network.test", blog_id=fresh)  # the plugin made it
        await source.read()
        assert source.sites_mark == fresh

    async def test_a_record_the_admin_deleted_is_not_made_again(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_site(db, "shop.network.test")
        source = open_source(db)
        created = await source.read()
        assert created.domains["shop.network.test"].mapping_id is not None
        await db.execute("DELETE FROM {m} WHERE domain = 'shop.network.test'")
        after = await source.read()
        assert "shop.network.test" not in after.domains
        assert await db.query("SELECT domain FROM {m}") == []

    async def test_two_sources_racing_insert_each_site_record_once(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        wanted = {f"site{i}.network.test" for i in range(30)}
        for domain in sorted(wanted):
            await add_site(db, domain)
        one, two = open_source(db), open_source(db)
        first, second = await asyncio.gather(one.read(), two.read())
        assert first.healthy and second.healthy, (first.problems, second.problems)
        assert wanted <= names(first) and wanted <= names(second)
        rows = await db.query("SELECT blog_id, domain, COUNT(*) FROM {m} GROUP BY blog_id, domain")
        assert sorted(str(d) for _b, d, _n in rows) == sorted(wanted)
        assert {int(n) for _b, _d, n in rows} == {1}
        assert one.sites_mark == two.sites_mark == max(int(b) for b, _d, _n in rows)

    async def test_write_stage_changes_only_stage_secure_and_date_modified(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        target = await add_mapping(db, "target.example.com")
        await add_mapping(db, "other.example.com")
        await add_site(db, "blog.network.test")
        await set_network_settings(db, SETTINGS_120)
        source = open_source(db, create_site_records=False)
        untouched = [db.tables.blogs, db.tables.site, db.tables.sitemeta]
        before = {t: await table_contents(db, t) for t in untouched}
        mappings_before = await table_contents(db, db.tables.mappings)

        assert await source.write_stage("TARGET.example.com", "done", True) == 1

        assert {t: await table_contents(db, t) for t in untouched} == before
        mappings_after = await table_contents(db, db.tables.mappings)
        # Columns: id, blog_id, domain, active, primary_domain, secure, stage, created, modified
        for old, new in zip(mappings_before, mappings_after, strict=True):
            if old[0] == target:
                assert new[:5] == old[:5] and new[7] == old[7]
                assert (new[5], new[6]) == (1, "done")
                assert new[8] != old[8]
            else:
                assert new == old

    async def test_write_stage_refuses_unknown_stages_and_respects_the_switch(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_mapping(db, "target.example.com")
        before = await table_contents(db, db.tables.mappings)
        with pytest.raises(ValueError, match="not one of"):
            await open_source(db).write_stage("target.example.com", "live", True)
        off = open_source(db, write_back=False)
        assert await off.write_stage("target.example.com", "done", True) == 0
        assert await open_source(db).write_stage("absent.example.com", "done", True) == 0
        with pytest.raises(ValueError, match="mapping id"):
            await open_source(db).write_stage("target.example.com", "done", True, mapping_ids=[0])
        assert await table_contents(db, db.tables.mappings) == before

    async def test_watch_shows_a_stage_written_back(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await add_mapping(db, "target.example.com")
        source = open_source(db)
        stream = source.watch()
        await next_snapshot(stream, has("target.example.com"))
        await source.write_stage("target.example.com", "checking-ssl-cert", False)
        await next_snapshot(
            stream, lambda s: s.domains["target.example.com"].stage == "checking-ssl-cert"
        )

    async def test_sites_created_while_no_source_ran_get_their_record_at_the_next_start(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        first_site = await add_site(db, "first.network.test")
        a = open_source(db)
        assert (await a.read()).domains["first.network.test"].mapping_id is not None
        mark = a.sites_mark
        assert mark == first_site
        await a.aclose()

        spam = await add_site(db, "spam.network.test", spam=1)
        down = await add_site(db, "while-down.network.test")
        b = open_source(db, new_sites_after=mark)
        created = (await b.read()).domains["while-down.network.test"]
        assert (created.origin, created.blog_id) == ("site", down)
        assert created.mapping_id is not None
        assert b.sites_mark == down > spam  # the spam site needs nothing: passed
        await b.aclose()

        # A record the admin then deletes is not made again by a later start.
        await db.execute("DELETE FROM {m} WHERE blog_id = ?", down)
        before = await table_contents(db, db.tables.mappings)
        c = open_source(db, new_sites_after=b.sites_mark)
        snapshot = await c.read()
        assert "while-down.network.test" not in snapshot.domains
        assert await table_contents(db, db.tables.mappings) == before
        assert c.sites_mark == down

    async def test_a_site_left_without_its_record_holds_the_mark(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        waiting = await add_site(db, "waiting.network.test")
        await add_site(db, "later.network.test")
        source = open_source(db, create_site_records=False)
        await source.read()
        assert source.sites_mark == waiting - 1
        # The next start (here with records on) picks the waiting site up again.
        again = open_source(db, new_sites_after=source.sites_mark)
        snapshot = await again.read()
        assert snapshot.domains["waiting.network.test"].mapping_id is not None
        assert again.sites_mark == waiting + 1

    async def test_write_stage_by_row_id_changes_only_those_rows_and_only_once(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        one = await add_mapping(db, "target.example.com", blog_id=3)
        two = await add_mapping(db, "target.example.com", blog_id=4)
        other = await add_mapping(db, "other.example.com", blog_id=5)
        source = open_source(db)

        assert await source.write_stage("target.example.com", "done", True, mapping_ids=[one]) == 1
        stages = await db.query("SELECT id, stage, secure FROM {m} ORDER BY id")
        assert stages == [(one, "done", 1), (two, "checking-dns", 0), (other, "checking-dns", 0)]

        # Already there: nothing is written, date_modified included.
        settled = await table_contents(db, db.tables.mappings)
        assert await source.write_stage("target.example.com", "done", True, mapping_ids=[one]) == 0
        assert await source.write_stage("target.example.com", "done", True, mapping_ids=[]) == 0
        assert await table_contents(db, db.tables.mappings) == settled

        # An id whose row now holds another domain (edited since it was read) is left alone.
        assert (
            await source.write_stage("target.example.com", "failed", False, mapping_ids=[other])
            == 0
        )
        assert await table_contents(db, db.tables.mappings) == settled

        # Without ids: every row of the domain that differs.
        assert await source.write_stage("target.example.com", "done", True) == 1
        assert await db.query("SELECT stage, secure FROM {m} WHERE id = ?", two) == [("done", 1)]

    async def test_write_stage_finds_an_international_name_stored_as_typed(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        row = await add_mapping(db, "bücher.example")
        source = open_source(db)
        assert (await source.read()).domains["xn--bcher-kva.example"].mapping_id == row
        assert await source.write_stage("xn--bcher-kva.example", "checking-ssl-cert", False) == 1
        assert (
            await source.write_stage("xn--bcher-kva.example", "done", True, mapping_ids=[row]) == 1
        )
        assert await db.query("SELECT domain, stage, secure FROM {m}") == [
            ("bücher.example", "done", 1)
        ]

    @pytest.mark.parametrize(
        ("serialized", "interval", "complaint"),
        [
            (SETTINGS_120, 120, None),
            ('a:1:{s:18:"dns_check_interval";s:2:"60";}', 60, None),
            ('a:1:{s:10:"other_knob";i:5;}', None, None),
            (
                'a:1:{s:18:"dns_check_interval";i:5;}',
                10,
                "dns_check_interval 5 is below 10 seconds; using 10 as the plugin does",
            ),
            (
                'a:1:{s:18:"dns_check_interval";s:3:"900";}',
                300,
                "dns_check_interval 900 is above 300 seconds; using 300 as the plugin does",
            ),
            ('a:1:{s:18:"dns_check_interval";i:-30;}', 10, "-30 is below 10 seconds"),
            ('a:1:{s:18:"dns_check_interval";s:4:"soon";}', None, "not a whole number"),
            ('a:1:{s:18:"dns_check_interval";i:120;', None, "not a PHP-serialized"),
            ('O:8:"stdClass":1:{s:1:"a";i:1;}', None, "not a PHP-serialized"),
            ("just text", None, "not a PHP-serialized"),
            ("i:120;", None, "expected a serialized array"),
        ],
    )
    async def test_dns_check_interval_from_the_network_settings(
        self,
        db: TestDatabase,
        open_source: Callable[..., DatabaseSource],
        serialized: str,
        interval: int | None,
        complaint: str | None,
    ) -> None:
        await add_mapping(db, "kept.example.com")
        await set_network_settings(db, serialized)
        snapshot = await open_source(db).read()
        assert snapshot.healthy and names(snapshot) == {"kept.example.com"}
        assert snapshot.facts.get("dns_check_interval") == interval
        if complaint is None:
            assert snapshot.problems == ()
        else:
            [problem] = snapshot.problems
            assert problem.place == f"{db.tables.sitemeta}:wp-ultimo_v2_settings"
            assert complaint in problem.message
            # A clamped value is a warning (the fact is there); anything else an error.
            assert problem.level is (Level.WARNING if interval is not None else Level.ERROR)

    async def test_no_network_settings_means_no_interval_and_no_problem(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        snapshot = await open_source(db).read()
        assert "dns_check_interval" not in snapshot.facts and snapshot.problems == ()

    async def test_watch_sees_the_interval_change(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        stream = open_source(db).watch()
        assert "dns_check_interval" not in (await next_snapshot(stream)).facts
        await set_network_settings(db, SETTINGS_120)
        await next_snapshot(stream, lambda s: s.facts.get("dns_check_interval") == 120)

    async def test_watch_ends_when_the_source_is_closed(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        source = open_source(db)
        stream = source.watch()
        await next_snapshot(stream)
        pending = asyncio.ensure_future(anext(stream, None))
        await source.aclose()
        assert await asyncio.wait_for(pending, 5) is None

    async def test_a_missing_mappings_table_is_unhealthy_and_named(
        self, db: TestDatabase, open_source: Callable[..., DatabaseSource]
    ) -> None:
        await db.execute("DROP TABLE {m}")
        snapshot = await open_source(db).read()
        assert not snapshot.healthy and snapshot.domains == {}
        assert db.tables.mappings in snapshot.problems[0].message
