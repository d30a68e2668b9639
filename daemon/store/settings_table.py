"""Live settings an operator sets while the daemon runs (the check interval, say).

Values are JSON; each row remembers who set it and when, so the TUI can say which source
won ("set by admin in the TUI at 14:02").
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from closte_sync.daemon.store.database import Database
from closte_sync.daemon.store.errors import StoreError
from closte_sync.daemon.store.scrubber import Scrubber

_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@dataclass(frozen=True)
class SettingValue:
    key: str
    value: Any  # decoded JSON
    set_by: str
    set_at: float


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise StoreError(
            f"setting key {key!r}: use lower-case words joined by '_' and '.', "
            "like 'checks.interval_s'"
        )


def _setting(row: aiosqlite.Row) -> SettingValue:
    return SettingValue(
        key=row["key"], value=json.loads(row["value"]), set_by=row["set_by"], set_at=row["set_at"]
    )


class SettingsTable:
    def __init__(self, db: Database, scrubber: Scrubber) -> None:
        self._db = db
        self._scrub = scrubber

    async def get(self, key: str) -> SettingValue | None:
        _check_key(key)
        row = await self._db.fetch_one(
            f"reading setting {key}",
            "SELECT key, value, set_by, set_at FROM settings WHERE key = ?",
            (key,),
        )
        return _setting(row) if row is not None else None

    async def all(self) -> list[SettingValue]:
        rows = await self._db.fetch_all(
            "reading settings", "SELECT key, value, set_by, set_at FROM settings ORDER BY key"
        )
        return [_setting(row) for row in rows]

    async def set(
        self, key: str, value: Any, *, set_by: str, now: float | None = None
    ) -> SettingValue:
        _check_key(key)
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"setting {key}: the value is not JSON ({exc})") from None
        at = time.time() if now is None else now
        encoded = self._scrub.json(json.loads(encoded))
        who = self._scrub.text(set_by)
        async with self._db.transaction(f"saving setting {key}") as conn:
            await conn.execute(
                "INSERT INTO settings (key, value, set_by, set_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "set_by = excluded.set_by, set_at = excluded.set_at",
                (key, encoded, who, at),
            )
        return SettingValue(key=key, value=json.loads(encoded), set_by=who, set_at=at)

    async def delete(self, key: str) -> bool:
        """Forget a live value (the next source in line wins again). True if one was set."""
        _check_key(key)
        async with self._db.transaction(f"clearing setting {key}") as conn:
            cursor = await conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            return cursor.rowcount > 0
