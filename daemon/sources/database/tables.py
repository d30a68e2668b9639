"""Table names, built only from a validated prefix and network id (never from raw input)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# WordPress accepts only these characters in $table_prefix; anything else is refused here
# because the names go into SQL text (values are always bound parameters).
_PREFIX = re.compile(r"^[A-Za-z0-9_]{1,64}$")

# The plugin's `stage` enum, in its own order.
STAGES: tuple[str, ...] = (
    "checking-dns",
    "checking-ssl-cert",
    "done-without-ssl",
    "done",
    "failed",
    "ssl-failed",
)
DEFAULT_STAGE = "checking-dns"

# The network option (in sitemeta) holding the plugin's settings array.
SETTINGS_KEY = "wp-ultimo_v2_settings"


class DatabaseConfigError(ValueError):
    """A database setting that cannot be used (bad prefix, bad network id)."""


@dataclass(frozen=True)
class TableNames:
    mappings: str  # {prefix}wu_domain_mappings, or {prefix}wu_{n}_domain_mappings
    blogs: str
    site: str
    sitemeta: str

    @classmethod
    def build(cls, base_prefix: str, network_id: int = 1) -> TableNames:
        if not _PREFIX.match(base_prefix):
            raise DatabaseConfigError(
                f"database.base_prefix {base_prefix!r}: only letters, digits and '_' are allowed"
            )
        if isinstance(network_id, bool) or not isinstance(network_id, int) or network_id < 1:
            raise DatabaseConfigError(
                f"database.network_id {network_id!r}: must be a whole number of at least 1"
            )
        network = "" if network_id == 1 else f"{network_id}_"
        return cls(
            mappings=f"{base_prefix}wu_{network}domain_mappings",
            blogs=f"{base_prefix}blogs",
            site=f"{base_prefix}site",
            sitemeta=f"{base_prefix}sitemeta",
        )
