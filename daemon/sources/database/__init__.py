"""The multisite database source: Ultimate Multisite's domain mappings, read from MySQL/MariaDB
or from WordPress's SQLite file, plus stage write-back and records for new sites."""

from closte_sync.daemon.sources.database.source import DatabaseSource
from closte_sync.daemon.sources.database.tables import STAGES, DatabaseConfigError, TableNames

__all__ = ["STAGES", "DatabaseConfigError", "DatabaseSource", "TableNames"]
