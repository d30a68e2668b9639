"""Turning the rows of one read into a snapshot: pure functions, no I/O.

Which sites need a mapping record like the one the plugin creates (its
``handle_site_created``): a site of this network (``blogs.site_id`` = network id) above the
source's mark (the plugin makes records when a site is created, not for sites that were
there before it), not deleted, spam or archived, whose domain is not the network's own
domain (``site.domain`` or DOMAIN_CURRENT_SITE), whose ``blog_id`` has no row in the
mappings table (active or not, whatever its domain: the plugin's own test), and that was
not handled before (a site whose record an admin deleted is not given a new one). On a
subdomain install that is every new site; on a subdirectory install it is only a site with
its own domain. Leaving out deleted, spam and archived sites is our choice: such a site is
not served, so asking Closte for its domain and certificate would only spend the rate
budget.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from closte_sync.daemon.events import Level
from closte_sync.daemon.settings import MAX_INTERVAL_S, MIN_INTERVAL_S
from closte_sync.daemon.sources.base import DesiredDomain, SourceProblem
from closte_sync.daemon.sources.database.phpserial import PhpSerialError, php_unserialize
from closte_sync.daemon.sources.database.rows import MappingRow, NetworkRead, SiteRow
from closte_sync.daemon.sources.database.tables import (
    DEFAULT_STAGE,
    SETTINGS_KEY,
    STAGES,
    TableNames,
)
from closte_sync.shared.domains import DomainError
from closte_sync.shared.domains import normalize_domain as _normalize_uncached

INTERVAL_KEY = "dns_check_interval"
_SIGNED_WHOLE = re.compile(r"[+-]?[0-9]+")


# Every read sees the same names again; remembering them keeps a re-read of 10,000 rows
# cheap. A bad name is remembered by its reason (a fresh error is raised each time).
@functools.lru_cache(maxsize=65536)
def _normalized(text: str) -> tuple[str, str]:
    try:
        return _normalize_uncached(text), ""
    except DomainError as exc:
        return "", exc.reason


def normalize_domain(text: str) -> str:
    name, reason = _normalized(text)
    if reason:
        raise DomainError(text, reason)
    return name


@dataclass
class Built:
    domains: dict[str, DesiredDomain] = field(default_factory=dict)
    problems: list[SourceProblem] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)
    missing_records: list[DesiredDomain] = field(default_factory=list)  # origin "site"
    # New sites that need nothing more: their record exists, or they are not eligible.
    handled_sites: set[int] = field(default_factory=set)


def build(
    read: NetworkRead,
    tables: TableNames,
    *,
    network_id: int,
    active_only: bool,
    domain_current_site: str | None,
    handled_sites: frozenset[int] = frozenset(),
) -> Built:
    built = Built()
    for place, why in read.unreadable:
        built.problems.append(SourceProblem(place, why))
    _add_mappings(built, read.mappings, tables.mappings, active_only)
    mapped_blogs = {row.blog_id for row in read.mappings}
    main_domains = _main_domains(built, read.network_domain, domain_current_site, tables.site)
    sites = [s for s in read.sites if s.blog_id not in handled_sites]
    for desired in _new_sites(built, sites, tables.blogs, network_id, mapped_blogs, main_domains):
        built.missing_records.append(desired)
        built.domains.setdefault(desired.name, desired)
    _read_interval(built, read.settings_value, tables.sitemeta)
    return built


def _add_mappings(built: Built, rows: Iterable[MappingRow], table: str, active_only: bool) -> None:
    for row in rows:
        place = f"{table}#{row.id}"
        try:
            name = normalize_domain(row.domain)
        except DomainError as exc:
            built.problems.append(SourceProblem(place, f"domain {row.domain!r}: {exc.reason}"))
            continue
        if row.stage is not None and row.stage not in STAGES:
            built.problems.append(
                SourceProblem(place, f"{name}: unknown stage {row.stage!r}", Level.WARNING)
            )
        if active_only and not row.active:
            continue
        desired = DesiredDomain(
            name=name,
            origin="database",
            active=row.active,
            blog_id=row.blog_id,
            mapping_id=row.id,
            stage=row.stage,
            primary=row.primary,
            place=place,
        )
        earlier = built.domains.get(name)
        if earlier is not None:
            built.problems.append(
                SourceProblem(place, f"{name}: also mapped by {earlier.place}", Level.WARNING)
            )
            # An active row says more than an inactive one; otherwise the first row wins.
            if earlier.active or not desired.active:
                continue
        built.domains[name] = desired


def _main_domains(
    built: Built, network_domain: str | None, domain_current_site: str | None, site_table: str
) -> set[str]:
    names: set[str] = set()
    for raw, place in ((network_domain, site_table), (domain_current_site, "DOMAIN_CURRENT_SITE")):
        if not raw:
            continue
        try:
            names.add(normalize_domain(raw))
        except DomainError as exc:
            built.problems.append(
                SourceProblem(place, f"network domain {raw!r}: {exc.reason}", Level.WARNING)
            )
    return names


def _new_sites(
    built: Built,
    sites: Iterable[SiteRow],
    table: str,
    network_id: int,
    mapped_blogs: set[int],
    main_domains: set[str],
) -> Iterable[DesiredDomain]:
    for site in sites:
        if site.site_id != network_id or site.deleted or site.spam or site.archived:
            built.handled_sites.add(site.blog_id)  # not eligible
            continue
        if site.blog_id in mapped_blogs:
            built.handled_sites.add(site.blog_id)  # the plugin (or we) made its record
            continue
        place = f"{table}#{site.blog_id}"
        try:
            name = normalize_domain(site.domain)
        except DomainError as exc:
            # Not eligible: no record can carry this name. Reported once, then passed.
            built.problems.append(SourceProblem(place, f"domain {site.domain!r}: {exc.reason}"))
            built.handled_sites.add(site.blog_id)
            continue
        if name in main_domains:
            built.handled_sites.add(site.blog_id)  # a site on the network's own domain
            continue
        # The record the plugin itself creates for a new site: active, primary, checking DNS.
        yield DesiredDomain(
            name=name,
            origin="site",
            active=True,
            blog_id=site.blog_id,
            stage=DEFAULT_STAGE,
            primary=True,
            place=place,
        )


def _read_interval(built: Built, raw: str | None, sitemeta_table: str) -> None:
    if raw is None:
        return  # the option is not set: the plugin's default applies, nothing to report
    place = f"{sitemeta_table}:{SETTINGS_KEY}"
    try:
        settings = php_unserialize(raw)
    except PhpSerialError as exc:
        built.problems.append(SourceProblem(place, str(exc)))
        return
    if not isinstance(settings, dict):
        built.problems.append(
            SourceProblem(place, f"expected a serialized array, got {type(settings).__name__}")
        )
        return
    if INTERVAL_KEY not in settings:
        return
    value = settings[INTERVAL_KEY]
    interval = _whole_number(value)
    if interval is None:
        built.problems.append(
            SourceProblem(place, f"{INTERVAL_KEY} {value!r} is not a whole number of seconds")
        )
        return
    # The plugin clamps an out-of-range value rather than refusing it: do the same, and say so.
    clamped = min(max(interval, MIN_INTERVAL_S), MAX_INTERVAL_S)
    if clamped != interval:
        side = "below" if interval < MIN_INTERVAL_S else "above"
        built.problems.append(
            SourceProblem(
                place,
                f"{INTERVAL_KEY} {interval} is {side} {clamped} seconds;"
                f" using {clamped} as the plugin does",
                Level.WARNING,
            )
        )
    built.facts[INTERVAL_KEY] = clamped


def _whole_number(value: object) -> int | None:
    # WordPress settings pages save numbers as strings ("120") as often as integers.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _SIGNED_WHOLE.fullmatch(value.strip()):
        return int(value.strip())
    return None
