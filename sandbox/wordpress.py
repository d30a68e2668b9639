"""A small WordPress multisite network on disk, for the demo and for tests.

It is laid out the way WordPress's SQLite Database Integration leaves a real install:
``wp-config.php`` (read-only on Closte, the API key added through the dashboard),
``wp-content/db.php`` (the drop-in) and ``wp-content/database/.ht.sqlite`` holding the
network tables and Ultimate Multisite's ``wu_domain_mappings``, with the integration's
translated column types (MySQL's enum becomes text, integers become integer).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SQLITE_TABLES = """
CREATE TABLE IF NOT EXISTS {p}site (
    id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    domain text NOT NULL DEFAULT '',
    path text NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS {p}sitemeta (
    meta_id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    site_id integer NOT NULL DEFAULT 0,
    meta_key text DEFAULT NULL,
    meta_value text
);
CREATE TABLE IF NOT EXISTS {p}blogs (
    blog_id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    site_id integer NOT NULL DEFAULT 0,
    domain text NOT NULL DEFAULT '',
    path text NOT NULL DEFAULT '',
    registered text NOT NULL DEFAULT '0000-00-00 00:00:00',
    last_updated text NOT NULL DEFAULT '0000-00-00 00:00:00',
    public integer NOT NULL DEFAULT 1,
    archived integer NOT NULL DEFAULT 0,
    mature integer NOT NULL DEFAULT 0,
    spam integer NOT NULL DEFAULT 0,
    deleted integer NOT NULL DEFAULT 0,
    lang_id integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {p}wu_domain_mappings (
    id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    blog_id integer NOT NULL,
    domain text NOT NULL,
    active integer DEFAULT 1,
    primary_domain integer DEFAULT 0,
    secure integer DEFAULT 0,
    stage text NOT NULL DEFAULT 'checking-dns',
    date_created text DEFAULT NULL,
    date_modified text DEFAULT NULL
);
"""

WP_CONFIG = """<?php
/**
 * The base configuration for WordPress (a sample network made by closte-sync).
 */
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wordpress' );
define( 'DB_PASSWORD', 'not-used-with-sqlite' );
define( 'DB_HOST', 'localhost' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );

$table_prefix = '{prefix}';

define( 'WP_ALLOW_MULTISITE', true );
define( 'MULTISITE', true );
define( 'SUBDOMAIN_INSTALL', {subdomain} );
define( 'DOMAIN_CURRENT_SITE', '{main_domain}' );
define( 'PATH_CURRENT_SITE', '/' );
define( 'SITE_ID_CURRENT_SITE', 1 );
define( 'BLOG_ID_CURRENT_SITE', 1 );

/* Additional wp-config.php content (Closte dashboard) */
define( 'CLOSTE_CLIENT_API_KEY', '{api_key}' );

if ( ! defined( 'ABSPATH' ) ) {{
    define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""

DB_DROP_IN = """<?php
/**
 * Plugin Name: SQLite integration (Drop-in)
 * Loads the SQLite Database Integration plugin's sqlite translator.
 */
define( 'SQLITE_DB_DROPIN_VERSION', '2.1.16' );
"""


@dataclass(frozen=True)
class SampleNetwork:
    root: Path
    wp_config: Path
    database: Path
    prefix: str

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A plain autocommit connection, as PHP would hold one, closed on leaving."""
        db = sqlite3.connect(self.database, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def add_mapping(self, domain: str, blog_id: int = 2, *, active: bool = True) -> None:
        with self.connect() as db:
            db.execute(
                f"INSERT INTO {self.prefix}wu_domain_mappings"
                " (blog_id, domain, active, primary_domain, secure, stage,"
                "  date_created, date_modified)"
                " VALUES (?, ?, ?, 1, 0, 'checking-dns', datetime('now'), datetime('now'))",
                (blog_id, domain, int(active)),
            )

    def add_site_record(self, blog_id: int, domain: str) -> None:
        """The record Ultimate Multisite makes when a site is created (handle_site_created):
        active, primary, not secure, checking DNS."""
        with self.connect() as db:
            db.execute(
                f"INSERT INTO {self.prefix}wu_domain_mappings"
                " (blog_id, domain, active, primary_domain, secure, stage,"
                "  date_created, date_modified)"
                " VALUES (?, ?, 1, 1, 0, 'checking-dns', datetime('now'), datetime('now'))",
                (blog_id, domain),
            )

    def add_site(self, domain: str, path: str = "/") -> int:
        with self.connect() as db:
            cursor = db.execute(
                f"INSERT INTO {self.prefix}blogs (site_id, domain, path, registered, last_updated)"
                " VALUES (1, ?, ?, datetime('now'), datetime('now'))",
                (domain, path),
            )
            return int(cursor.lastrowid or 0)


def build_network(
    root: Path,
    *,
    api_key: str,
    main_domain: str = "network.sandbox.test",
    prefix: str = "wp_",
    subdomain_install: bool = True,
    sites: Iterable[str] = (),
    mappings: Iterable[tuple[str, int]] = (),
    site_records: bool = True,
) -> SampleNetwork:
    """Write a network under ``root``: the main site, ``sites`` and domain ``mappings``.

    ``site_records``: each site on a domain of its own gets the record the plugin makes
    when a site is created, as on a live network; False lays the sites out bare (made
    while the plugin was inactive), so closte-sync makes the records for the sites that
    have no mapping row."""
    content = root / "wp-content"
    (content / "database").mkdir(parents=True, exist_ok=True)
    wp_config = root / "wp-config.php"
    wp_config.write_text(
        WP_CONFIG.format(
            prefix=prefix,
            subdomain="true" if subdomain_install else "false",
            main_domain=main_domain,
            api_key=api_key,
        )
    )
    (content / "db.php").write_text(DB_DROP_IN)
    network = SampleNetwork(root, wp_config, content / "database" / ".ht.sqlite", prefix)
    with network.connect() as db:
        db.executescript(SQLITE_TABLES.format(p=prefix))
        db.execute(
            f"INSERT INTO {prefix}site (id, domain, path) VALUES (1, ?, '/')", (main_domain,)
        )
        db.execute(
            f"INSERT INTO {prefix}sitemeta (site_id, meta_key, meta_value)"
            " VALUES (1, 'wu_host_integrations_enabled', 'a:1:{s:6:\"closte\";b:1;}')"
        )
    network.add_site(main_domain)
    for site in sites:
        blog_id = network.add_site(site)
        if site_records and site != main_domain:
            network.add_site_record(blog_id, site)
    for domain, blog_id in mappings:
        network.add_mapping(domain, blog_id)
    return network
