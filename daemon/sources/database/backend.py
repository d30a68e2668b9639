"""One interface over the two database engines WordPress runs on.

The source does not know SQL dialects: it asks a backend for a cheap change fingerprint,
a full read, an idempotent insert of a site's record and a one-statement stage update. Every backend
error reaches the source as ``DatabaseUnavailable`` with a message that carries no secret.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from closte_sync.daemon.sources.database.rows import NetworkRead


class DatabaseUnavailable(Exception):
    """The database could not be reached or queried; the message is safe to show."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where  # the database, described without secrets
        self.reason = reason


class Backend(Protocol):
    description: str  # where the database is, without secrets
    # True when wait_for_change returns on real changes (so the caller may poll slowly);
    # False when it only waits (so the caller polls the fingerprint at its own rate).
    change_notifications: bool

    async def connect(self) -> None:
        """Open the connection (no-op when open)."""

    async def close(self) -> None:
        """Close the connection; safe to call at any time."""

    async def fingerprint(self) -> Hashable:
        """A cheap value that changes whenever a full read could give something new."""

    async def read_all(self, sites_after: int | None) -> NetworkRead:
        """Mappings, the sites newer than ``sites_after`` (None: none, only the highest
        blog_id), the network's domain and the plugin's settings, in one go."""

    async def insert_site_record(self, blog_id: int, domain: str) -> int | None:
        """Insert the plugin's record for a new site unless a row has its ``blog_id``.

        Returns the new row's id, or None when a row was already there. Safe against
        another writer doing the same at the same time.
        """

    async def check_write_access(self, *, insert: bool, update: bool) -> None:
        """Raise DatabaseUnavailable when the writes asked for (inserting site records,
        updating stages) would be refused."""

    async def update_stage(
        self, stage: str, secure: bool, *, spellings: Sequence[str], ids: Sequence[int] | None
    ) -> int:
        """One statement: set stage, secure and date_modified on the rows of one domain
        (stored as one of ``spellings``; with ``ids``, only those rows, found by primary key)
        whose stage or secure flag differ. Returns how many rows it changed."""

    async def wait_for_change(self, timeout: float) -> None:
        """Return when the data may have changed, or after ``timeout`` seconds."""
