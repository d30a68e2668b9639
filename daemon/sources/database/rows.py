"""Plain rows as the backends hand them over (columns already converted to Python types)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MappingRow:
    """One row of wu_domain_mappings."""

    id: int
    blog_id: int
    domain: str
    active: bool
    primary: bool
    secure: bool
    stage: str | None


@dataclass(frozen=True)
class SiteRow:
    """One row of blogs (a site of the network)."""

    blog_id: int
    site_id: int  # the network the site belongs to
    domain: str
    path: str
    archived: bool
    spam: bool
    deleted: bool


@dataclass(frozen=True)
class NetworkRead:
    """Everything one full read takes from the database."""

    mappings: list[MappingRow]
    sites: list[SiteRow]  # the sites that may need a record (backends may leave out the rest)
    network_domain: str | None  # {prefix}site.domain for the network, when the row exists
    settings_value: str | None  # sitemeta wp-ultimo_v2_settings, raw (PHP-serialized)
    max_blog_id: int = 0  # the highest blog_id of this network's sites, new sites find it
    # Rows whose columns could not be read (a blog_id that is not a number...): (place, why).
    unreadable: list[tuple[str, str]] = field(default_factory=list)
