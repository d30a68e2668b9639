"""The schema, as an ordered list of steps: step n takes a file from version n-1 to n.

The version lives in ``PRAGMA user_version``: it sits in the file header, so it can be read
before any table exists and without touching a file we are going to refuse; it changes in
the same transaction as the step's tables, so a crash mid-step leaves the old version and the
old tables, never a mix; and ``sqlite3 FILE 'PRAGMA user_version'`` shows it to an admin.

Never edit a released step; add a new one. Times are Unix seconds (REAL), as in ``Event``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from closte_sync.daemon.store.database import APPLICATION_ID, Database, FileFacts, fetch_one
from closte_sync.daemon.store.errors import NotAStoreError, SchemaTooNewError, StoreError


@dataclass(frozen=True)
class Migration:
    version: int  # the version the file has after this step
    description: str
    statements: tuple[str, ...]
    # A step that rebuilds a table others reference must run with foreign keys off (SQLite
    # cannot switch them inside a transaction, and DROP TABLE would cascade); the step is
    # checked with foreign_key_check before it commits.
    foreign_keys_off: bool = False


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "domain ledger and live settings",
        (
            f"PRAGMA application_id = {APPLICATION_ID}",
            # What we believe Closte holds and why. One row per domain, never deleted:
            # 'removed' rows keep the history of what we once added.
            """
            CREATE TABLE domains (
                domain      TEXT PRIMARY KEY,
                wildcard    INTEGER NOT NULL CHECK (wildcard IN (0, 1)),
                state       TEXT NOT NULL CHECK (state IN
                              ('wanted', 'adding', 'held', 'removing', 'removed', 'adopted')),
                origin      TEXT NOT NULL CHECK (origin IN
                              ('database', 'file', 'site', 'adopted')),
                added_by_us INTEGER NOT NULL DEFAULT 0 CHECK (added_by_us IN (0, 1)),
                place       TEXT NOT NULL DEFAULT '',
                first_seen  REAL NOT NULL,
                last_change REAL NOT NULL,
                last_error  TEXT,
                attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                CHECK (wildcard = (substr(domain, 1, 2) = '*.'))
            ) STRICT
            """,
            "CREATE INDEX domains_state ON domains (state)",
            """
            CREATE TABLE settings (
                key    TEXT PRIMARY KEY,
                value  TEXT NOT NULL CHECK (json_valid(value)),
                set_by TEXT NOT NULL,
                set_at REAL NOT NULL
            ) STRICT
            """,
        ),
    ),
    Migration(
        2,
        "stage checks and their history",
        (
            """
            CREATE TABLE stages (
                domain        TEXT PRIMARY KEY
                                REFERENCES domains (domain) ON DELETE CASCADE,
                stage         TEXT NOT NULL CHECK (stage IN
                                ('checking-dns', 'checking-ssl-cert', 'done',
                                 'done-without-ssl', 'failed', 'ssl-failed')),
                tries         INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
                next_check_at REAL,
                stage_since   REAL NOT NULL,
                last_check_at REAL,
                last_summary  TEXT NOT NULL DEFAULT ''
            ) STRICT
            """,
            # Only rows with a planned check are in the index the scheduler walks.
            "CREATE INDEX stages_due ON stages (next_check_at) WHERE next_check_at IS NOT NULL",
            # History keeps no foreign key: it outlives ledger changes, retention trims it.
            """
            CREATE TABLE checks (
                id      INTEGER PRIMARY KEY,
                time    REAL NOT NULL,
                domain  TEXT NOT NULL,
                kind    TEXT NOT NULL CHECK (kind IN ('dns', 'tls', 'api')),
                ok      INTEGER NOT NULL CHECK (ok IN (0, 1)),
                summary TEXT NOT NULL,
                details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
            ) STRICT
            """,
            "CREATE INDEX checks_domain_time ON checks (domain, time)",
            "CREATE INDEX checks_time ON checks (time)",
        ),
    ),
    Migration(
        3,
        "events",
        (
            # AUTOINCREMENT: ids never come back after retention empties the table, so a
            # viewer following "id > last seen" never misses or repeats an event.
            # level is a rank (10 debug .. 40 error) so "level >= warning" is a range.
            """
            CREATE TABLE events (
                id      INTEGER PRIMARY KEY AUTOINCREMENT,
                time    REAL NOT NULL,
                level   INTEGER NOT NULL,
                kind    TEXT NOT NULL,
                domain  TEXT,
                message TEXT NOT NULL,
                details TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
            ) STRICT
            """,
            # Pages are newest-first by id, so filter indexes end in id: a filtered page
            # walks one index backwards and stops after `limit` rows, no sort needed.
            "CREATE INDEX events_time ON events (time)",
            "CREATE INDEX events_level ON events (level, id)",
            "CREATE INDEX events_domain ON events (domain, id)",
            "CREATE INDEX events_kind ON events (kind, id)",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "refused adds, per-domain backoff",
        (
            # A refused add is final until the domain changes or an operator retries it:
            # its own state, so a pass never sends it again. retry_at holds a domain back
            # after transient failures (per-domain backoff); failures counts them.
            """
            CREATE TABLE domains_v4 (
                domain      TEXT PRIMARY KEY,
                wildcard    INTEGER NOT NULL CHECK (wildcard IN (0, 1)),
                state       TEXT NOT NULL CHECK (state IN
                              ('wanted', 'adding', 'held', 'removing', 'removed', 'adopted',
                               'refused')),
                origin      TEXT NOT NULL CHECK (origin IN
                              ('database', 'file', 'site', 'adopted')),
                added_by_us INTEGER NOT NULL DEFAULT 0 CHECK (added_by_us IN (0, 1)),
                place       TEXT NOT NULL DEFAULT '',
                first_seen  REAL NOT NULL,
                last_change REAL NOT NULL,
                last_error  TEXT,
                attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                failures    INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
                retry_at    REAL,
                refusal     TEXT,
                CHECK (wildcard = (substr(domain, 1, 2) = '*.'))
            ) STRICT
            """,
            """
            INSERT INTO domains_v4 (domain, wildcard, state, origin, added_by_us, place,
                first_seen, last_change, last_error, attempts)
            SELECT domain, wildcard, state, origin, added_by_us, place, first_seen,
                last_change, last_error, attempts FROM domains
            """,
            "DROP TABLE domains",
            "ALTER TABLE domains_v4 RENAME TO domains",
            "CREATE INDEX domains_state ON domains (state)",
        ),
        foreign_keys_off=True,
    ),
)

SCHEMA_VERSION: int = MIGRATIONS[-1].version


def check_compatible(path: Path, facts: FileFacts) -> None:
    """Refuse a file this code must not migrate; say which file, why and what to do."""
    if facts.application_id not in (0, APPLICATION_ID):
        raise NotAStoreError(
            f"{path}: not a closte-sync store (application id {facts.application_id:#x}); "
            "check [store] path"
        )
    if facts.user_version == 0 and facts.has_schema:
        raise NotAStoreError(
            f"{path}: not a closte-sync store (it holds tables but no closte-sync schema "
            "version); check [store] path"
        )
    if facts.user_version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{path}: schema version {facts.user_version} is newer than the highest this "
            f"closte-sync knows ({SCHEMA_VERSION}); upgrade closte-sync to open it "
            "(the file was left untouched)"
        )


async def migrate(db: Database, *, target: int = SCHEMA_VERSION) -> list[Migration]:
    """Apply the missing steps up to ``target``, each in its own transaction.

    Each step re-reads the version under the write lock, so two processes starting at once
    apply every step exactly once. Returns the steps applied here.
    """
    applied = []
    for step in MIGRATIONS:
        if step.version > target:
            break
        if step.foreign_keys_off:
            await db.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            if await _apply(db, step):
                applied.append(step)
        finally:
            if step.foreign_keys_off:
                await db.conn.execute("PRAGMA foreign_keys = ON")
    return applied


async def _apply(db: Database, step: Migration) -> bool:
    """Apply one step unless the file already has it; True when applied here."""
    async with db.transaction(f"migrating to schema version {step.version}") as conn:
        row = await fetch_one(conn, "PRAGMA user_version")
        current = int(row[0]) if row else 0
        if current >= step.version:
            return False
        if current != step.version - 1:
            raise StoreError(f"{db.path}: version {current} has no step to {step.version}")
        for statement in step.statements:
            await conn.execute(statement)
        if step.foreign_keys_off and await fetch_one(conn, "PRAGMA foreign_key_check"):
            raise StoreError(f"{db.path}: step {step.version} broke a foreign key")
        await conn.execute(f"PRAGMA user_version = {step.version}")
    return True
