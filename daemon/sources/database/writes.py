"""The two writes the source makes, written once for both engines.

Both are single statements, so each is atomic on its own and costs one round trip:

- the plugin's record for a new site, inserted only while no row has the site's blog_id
  (the plugin's own test in ``create_domain_record_for_site``);
- one domain's stage written back, by primary key when the caller knows the row ids, or by
  the indexed ``domain`` column otherwise, touching only rows whose stage or secure flag
  differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from closte_sync.daemon.sources.database.reads import Dialect
from closte_sync.daemon.sources.database.tables import DEFAULT_STAGE, TableNames

Statement = tuple[str, tuple[Any, ...]]


def site_record_insert(
    tables: TableNames, dialect: Dialect, blog_id: int, domain: str
) -> Statement:
    """The record the plugin makes for a new site (active, primary, not secure, checking
    DNS), unless a row already has this blog_id, active or not."""
    table, p, now = dialect.table(tables.mappings), dialect.param, dialect.utc_now
    sql = (
        f"INSERT INTO {table} (blog_id, domain, active, primary_domain, secure, stage,"
        f" date_created, date_modified) SELECT {p}, {p}, 1, 1, 0, {p}, {now}, {now}"
        f" WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE blog_id = {p})"
    )
    return sql, (blog_id, domain, DEFAULT_STAGE, blog_id)


def stage_update(
    tables: TableNames,
    dialect: Dialect,
    stage: str,
    secure: bool,
    *,
    spellings: Sequence[str],
    ids: Sequence[int] | None,
) -> Statement:
    """Set stage, secure and date_modified on one domain's rows that differ.

    ``spellings``: the domain as it may be stored (ASCII, and the Unicode form of an IDN).
    With ``ids`` the rows are found by primary key, and a row whose domain was edited since
    the caller read it is left alone; without, by the domain index.
    """
    if not spellings:
        raise ValueError("stage_update: no spelling of the domain given")
    table, p = dialect.table(tables.mappings), dialect.param
    names = dialect.params(len(spellings))
    if ids is None:
        where = f"domain IN ({names})"
        keys: tuple[Any, ...] = tuple(spellings)
    else:
        if not ids:
            raise ValueError("stage_update: an empty list of row ids")
        where = f"id IN ({dialect.params(len(ids))}) AND domain{dialect.nocase} IN ({names})"
        keys = (*ids, *spellings)
    flag = int(secure)
    sql = (
        f"UPDATE {table} SET stage = {p}, secure = {p}, date_modified = {dialect.utc_now}"
        f" WHERE {where} AND (stage <> {p} OR secure <> {p} OR stage IS NULL OR secure IS NULL)"
    )
    return sql, (stage, flag, *keys, stage, flag)
