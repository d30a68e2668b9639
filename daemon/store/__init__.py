"""The daemon's SQLite store: domain ledger, stage checks, events and live settings.

``open_store`` gives a migrated, ready ``Store``; see ``store.py`` for the tour.
"""

from __future__ import annotations

from closte_sync.daemon.store.errors import (
    LedgerTransitionError,
    NotAStoreError,
    SchemaTooNewError,
    StoreBusyError,
    StoreError,
)
from closte_sync.daemon.store.event_log import EventFilter, EventLog, StoredEvent
from closte_sync.daemon.store.event_writer import EventWriter, WriterStats
from closte_sync.daemon.store.ledger import (
    DomainOrigin,
    DomainState,
    Ledger,
    LedgerEntry,
    Settled,
    Wish,
)
from closte_sync.daemon.store.migrations import SCHEMA_VERSION
from closte_sync.daemon.store.retention import PruneResult
from closte_sync.daemon.store.settings_table import SettingsTable, SettingValue
from closte_sync.daemon.store.stages import (
    CheckKind,
    CheckRecord,
    CheckWrite,
    Stage,
    StageEntry,
    Stages,
    StageUpdate,
)
from closte_sync.daemon.store.store import Store, StoreOptions, open_store

__all__ = [
    "SCHEMA_VERSION",
    "CheckKind",
    "CheckRecord",
    "CheckWrite",
    "DomainOrigin",
    "DomainState",
    "EventFilter",
    "EventLog",
    "EventWriter",
    "Ledger",
    "LedgerEntry",
    "LedgerTransitionError",
    "NotAStoreError",
    "PruneResult",
    "SchemaTooNewError",
    "SettingValue",
    "SettingsTable",
    "Settled",
    "Stage",
    "StageEntry",
    "StageUpdate",
    "Stages",
    "Store",
    "StoreBusyError",
    "StoreError",
    "StoreOptions",
    "StoredEvent",
    "Wish",
    "WriterStats",
    "open_store",
]
