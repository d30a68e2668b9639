"""What every source of desired domains gives the daemon.

A source reads the whole desired set at once (``read``) and, while it runs, yields a fresh
snapshot whenever that set may have changed (``watch``). A snapshot that is not ``healthy``
means "I could not read": the daemon then keeps the last good set and deletes nothing
because of it. Problems name their place (``file:line``, ``table#id``) so the operator can
go straight to them; one bad line or row never hides the good ones.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from closte_sync.daemon.events import Level
from closte_sync.shared.domains import is_wildcard

Origin = Literal["database", "site", "file"]


@dataclass(frozen=True)
class DesiredDomain:
    """One domain some source wants on Closte, stored in ASCII (punycode) form."""

    name: str
    origin: Origin
    active: bool = True
    blog_id: int | None = None
    mapping_id: int | None = None  # row id in wu_domain_mappings, when there is one
    stage: str | None = None  # the plugin's stage column, when there is one
    primary: bool = False
    place: str = ""  # where it was read: "domains.txt:12", "wp_wu_domain_mappings#7"

    @property
    def wildcard(self) -> bool:
        return is_wildcard(self.name)


@dataclass(frozen=True)
class SourceProblem:
    place: str  # "domains.txt:12", "wp_wu_domain_mappings#7", "wp_sitemeta:wp-ultimo_v2_settings"
    message: str
    level: Level = Level.ERROR

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


@dataclass(frozen=True)
class SourceSnapshot:
    source: str  # the source's name, e.g. "database" or "domains-file"
    domains: Mapping[str, DesiredDomain]
    healthy: bool = True
    problems: tuple[SourceProblem, ...] = ()
    taken_at: float = field(default_factory=time.time)
    # Source-specific facts the daemon may use (e.g. "dns_check_interval": 120).
    facts: Mapping[str, object] = field(default_factory=dict)


class Source(Protocol):
    name: str

    async def read(self) -> SourceSnapshot:
        """One full read of the desired set, now."""

    def watch(self) -> AsyncIterator[SourceSnapshot]:
        """The current snapshot first, then one each time the set may have changed."""

    async def aclose(self) -> None:
        """Release connections and watchers."""
