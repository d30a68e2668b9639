"""The configuration loader: layers, origins, discovery, wp-config.php and clear errors."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from closte_sync.daemon.config import ConfigError, LoadedConfig, ValueOrigin, load_config
from closte_sync.daemon.config.database import mysql_connection, parse_db_host
from closte_sync.daemon.events import Level
from closte_sync.daemon.settings import DatabaseConnection
from closte_sync.shared.secret import Secret

CORPUS = Path(__file__).parent / "data" / "wpconfig"
CLOSTE_KEY = "c1f0e7d2a9b84c3e8f5a6b7c8d9e0f1a"
CLOSTE_DB_PASSWORD = "q8#Zr!v2$Lp0@mWn"


@pytest.fixture
def socket_file(tmp_path: Path) -> Path:
    path = tmp_path / "sockets" / "mysqld.sock"
    path.parent.mkdir()
    path.touch()
    return path


def make_root(
    base: Path, corpus_file: str = "closte_multisite.php", *, above: bool = False
) -> Path:
    """A WordPress root under ``base``; wp-config.php in it, or one folder up."""
    root = base / "www" / "html"
    (root / "wp-content" / "uploads").mkdir(parents=True)
    (root / "wp-settings.php").touch()
    target = (root.parent if above else root) / "wp-config.php"
    shutil.copyfile(CORPUS / corpus_file, target)
    return root


def load(
    cwd: Path,
    *,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    sockets: list[Path] | None = None,
) -> LoadedConfig:
    return load_config(
        config,
        env=env or {},
        cwd=cwd,
        socket_candidates=sockets if sockets is not None else [],
        default_config_path=cwd / "no-such-default.toml",
    )


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def errors(loaded: LoadedConfig) -> list[str]:
    return [p.message for p in loaded.problems if p.level is Level.ERROR]


# -- no configuration needed -------------------------------------------------------------


def test_a_wordpress_root_is_all_it_takes(tmp_path: Path, socket_file: Path) -> None:
    root = make_root(tmp_path)
    loaded = load(root / "wp-content" / "uploads", sockets=[tmp_path / "absent", socket_file])
    s = loaded.settings
    assert s.wordpress_root == root
    assert loaded.wp_config == root / "wp-config.php"
    assert loaded.config_file is None
    assert s.closte.api_key == Secret(CLOSTE_KEY)
    assert s.database.connection == DatabaseConnection(
        "mysql",
        name="wpdb_k3x9q2",
        user="wpusr_k3x9q2",
        password=Secret(CLOSTE_DB_PASSWORD),
        host="localhost",
        unix_socket=str(socket_file),
    )
    assert s.database.base_prefix == "wp_"
    assert s.checks.network_hosts == ("network.example.com",)
    assert s.wordpress.multisite is True
    assert s.wordpress.subdomain_install is True
    assert s.wordpress.domain_current_site == "network.example.com"
    assert s.wordpress.table_prefix == "wp_"
    assert errors(loaded) == []
    wp = root / "wp-config.php"
    assert loaded.origins["closte.api_key"] == ValueOrigin(
        "wp-config", wp, 35, detail="CLOSTE_CLIENT_API_KEY"
    )
    assert loaded.origins["database.url"].kind == "wp-config"
    assert loaded.origins["database.url"].line == 7  # DB_NAME, the first of the four
    assert loaded.origins["database.base_prefix"] == ValueOrigin(
        "wp-config", wp, 19, detail="$table_prefix"
    )
    assert loaded.origins["wordpress_root"].kind == "discovered"
    assert loaded.origins["checks.interval_s"] == ValueOrigin("default")
    assert str(loaded.origins["closte.api_key"]) == (
        f"wp-config.php {wp}:35 (CLOSTE_CLIENT_API_KEY)"
    )


def test_localhost_without_a_socket_falls_back_to_tcp(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    loaded = load(root, sockets=[tmp_path / "missing.sock"])
    connection = loaded.settings.database.connection
    assert connection is not None
    assert (connection.host, connection.port, connection.unix_socket) == ("127.0.0.1", 3306, None)


def test_wp_config_one_folder_above_the_root(tmp_path: Path) -> None:
    root = make_root(tmp_path, above=True)
    loaded = load(root / "wp-content")
    assert loaded.settings.wordpress_root == root
    assert loaded.wp_config == root.parent / "wp-config.php"
    assert loaded.settings.closte.api_key == Secret(CLOSTE_KEY)
    # The same when the root is given rather than found.
    given = load(tmp_path, env={"CLOSTE_SYNC_WORDPRESS_ROOT": str(root)})
    assert given.wp_config == root.parent / "wp-config.php"
    assert given.origins["wordpress_root"] == ValueOrigin(
        "env", variable="CLOSTE_SYNC_WORDPRESS_ROOT"
    )


def test_wp_config_above_another_wordpress_root_is_not_used(tmp_path: Path) -> None:
    root = make_root(tmp_path, above=True)
    (root.parent / "wp-settings.php").touch()  # the folder above is a WordPress of its own
    loaded = load(tmp_path, env={"CLOSTE_SYNC_WORDPRESS_ROOT": str(root)})
    assert loaded.wp_config is None
    assert any("has no wp-config.php" in message for message in errors(loaded))


def test_no_wordpress_anywhere_is_a_note(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    assert loaded.settings.wordpress_root is None
    assert loaded.wp_config is None
    assert loaded.settings.database.connection is None
    [problem] = loaded.problems
    assert problem.level is Level.INFO
    assert "CLOSTE_SYNC_WORDPRESS_ROOT" in problem.message


def test_given_root_without_wp_config_is_an_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'wordpress_root = "{tmp_path / "nowhere"}"\n')
    loaded = load(tmp_path, config=config)
    assert loaded.settings.wordpress_root == tmp_path / "nowhere"
    assert any("nowhere" in m and "is no folder" in m for m in errors(loaded))


# -- layers and origins ------------------------------------------------------------------


def test_precedence_defaults_wpconfig_file_env(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    config = write_toml(
        tmp_path,
        "[closte]\n"
        'api_key = "file-key-0000000000000000000000000"\n'
        "concurrency = 8\n"
        "[database]\n"
        'base_prefix = "file_"\n'
        "poll_s = 2\n",
    )
    env = {
        "CLOSTE_SYNC_DATABASE_BASE_PREFIX": "env_",
        "CLOSTE_SYNC_CHECKS_INTERVAL_S": "60",
    }
    loaded = load(root, config=config, env=env)
    s = loaded.settings
    assert s.closte.api_key == Secret("file-key-0000000000000000000000000")  # file > wp-config
    assert s.database.base_prefix == "env_"  # env > file > wp-config
    assert s.database.poll_s == 2.0
    assert isinstance(s.database.poll_s, float)
    assert s.closte.concurrency == 8
    assert s.checks.interval_s == 60
    assert s.closte.rate_per_second == 2.0  # default
    assert loaded.origins["closte.api_key"] == ValueOrigin("file", config, 2)
    assert loaded.origins["closte.concurrency"] == ValueOrigin("file", config, 3)
    assert loaded.origins["database.poll_s"] == ValueOrigin("file", config, 6)
    assert loaded.origins["database.base_prefix"] == ValueOrigin(
        "env", variable="CLOSTE_SYNC_DATABASE_BASE_PREFIX"
    )
    assert loaded.origins["closte.rate_per_second"].kind == "default"
    assert loaded.origins["database.url"].kind == "wp-config"
    # The facts read from wp-config.php stay what the file says.
    assert s.wordpress.table_prefix == "wp_"


def test_env_values_of_every_type(tmp_path: Path) -> None:
    env = {
        "CLOSTE_SYNC_CHECKS_NAMESERVERS": "127.0.0.1:5353, 1.1.1.1,,[::1]:53",
        "CLOSTE_SYNC_CHECKS_NETWORK_IPS": "203.0.113.7",
        "CLOSTE_SYNC_DATABASE_ACTIVE_ONLY": "yes",
        "CLOSTE_SYNC_DATABASE_WRITE_BACK": "0",
        "CLOSTE_SYNC_GUARD_MAX_REMOVE_SHARE": "0.5",
        "CLOSTE_SYNC_STORE_PATH": "state/db.sqlite3",
        "CLOSTE_SYNC_SOCKET_GROUP": "www-data",
        "CLOSTE_SYNC_CLOSTE_API_KEY": "env-key-with-32-characters-000000",
        "CLOSTE_SYNC_DOMAINS_FILE_PATH": "/etc/closte-sync/domains.txt",
        "PATH": "/usr/bin",
    }
    s = load(tmp_path, env=env).settings
    assert s.checks.nameservers == ("127.0.0.1:5353", "1.1.1.1", "[::1]:53")
    assert s.checks.network_ips == ("203.0.113.7",)
    assert s.database.active_only is True
    assert s.database.write_back is False
    assert s.guard.max_remove_share == 0.5
    assert s.store.path == tmp_path / "state" / "db.sqlite3"  # relative to the cwd
    assert s.socket.group == "www-data"
    assert s.closte.api_key == Secret("env-key-with-32-characters-000000")
    assert s.domains_file.path == Path("/etc/closte-sync/domains.txt")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CLOSTE_SYNC_CHECKS_INTERVAL_S", "abc", "expected a whole number, got 'abc'"),
        ("CLOSTE_SYNC_CHECKS_INTERVAL_S", "5", "must be between 10 and 300, got 5"),
        ("CLOSTE_SYNC_CHECKS_INTERVAL_S", "301", "must be between 10 and 300, got 301"),
        ("CLOSTE_SYNC_DATABASE_ACTIVE_ONLY", "maybe", "expected true or false"),
        ("CLOSTE_SYNC_CLOSTE_RATE_PER_SECOND", "fast", "expected a number"),
        ("CLOSTE_SYNC_CHECKS_NETWORK_IPS", "1.2.3.4,nope", "'nope' is not an IP address"),
        ("CLOSTE_SYNC_CHECKS_NAMESERVERS", "1.1.1.1:99999", "bad port"),
        ("CLOSTE_SYNC_CHECKS_NETWORK_HOSTS", "http://x.example/", "looks like a URL"),
        ("CLOSTE_SYNC_CLOSTE_BASE_URL", "ftp://x", "not an http:// or https:// URL"),
        ("CLOSTE_SYNC_DATABASE_BASE_PREFIX", "wp-", "only letters, digits and underscores"),
        ("CLOSTE_SYNC_GUARD_MAX_REMOVE_SHARE", "1.5", "between 0.0 and 1.0"),
    ],
)
def test_env_errors_name_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env={variable: value})
    text = str(caught.value)
    assert text.startswith(f"environment variable {variable}: ")
    assert message in text


def test_env_interval_bounds_are_accepted(tmp_path: Path) -> None:
    for value in ("10", "300"):
        loaded = load(tmp_path, env={"CLOSTE_SYNC_CHECKS_INTERVAL_S": value})
        assert loaded.settings.checks.interval_s == int(value)


def test_unknown_env_variable_is_a_warning_with_a_suggestion(tmp_path: Path) -> None:
    loaded = load(tmp_path, env={"CLOSTE_SYNC_CHECKS_INTERVAL": "60"})
    warnings = [p.message for p in loaded.problems if p.level is Level.WARNING]
    assert warnings == [
        "environment variable CLOSTE_SYNC_CHECKS_INTERVAL is not a closte-sync setting "
        "(ignored); did you mean CLOSTE_SYNC_CHECKS_INTERVAL_S?"
    ]


# -- the TOML file -----------------------------------------------------------------------


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[closte]\nconcurrency = 4\nbase_url = "unterminated\n')
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config=config)
    assert str(caught.value).startswith(f"{config}:3:")
    assert "TOML syntax error" in str(caught.value)


def test_every_bad_key_is_named_at_once(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        "[checks]\n"
        "interval_s = 5\n"
        "dns_tries = 'five'\n"
        "[closte]\n"
        "concurency = 4\n"
        "[bogus]\n"
        "x = 1\n"
        "wordpres_root = '/x'\n",
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config=config)
    lines = str(caught.value).splitlines()
    assert f"{config}:2: [checks] interval_s: must be between 10 and 300, got 5" in lines
    assert f"{config}:3: [checks] dns_tries: expected a whole number, got a string ('five')" in (
        lines
    )
    assert (
        f"{config}:5: unknown key 'concurency' in [closte] (did you mean 'concurrency'?)" in lines
    )
    assert any(line.startswith(f"{config}:6: unknown section [bogus] (known: ") for line in lines)
    assert len(lines) == 4  # what sits inside an unknown section is not judged key by key


def test_misspelt_section_gets_a_suggestion(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[chekcs]\ninterval_s = 60\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config=config)
    assert str(caught.value) == f"{config}:1: unknown section [chekcs] (did you mean [checks]?)"


def test_a_section_must_be_a_table(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "closte = 3\n")
    with pytest.raises(ConfigError, match=r"config\.toml:1: closte must be a \[closte\] table"):
        load(tmp_path, config=config)


def test_given_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config=tmp_path / "missing.toml")
    assert (
        str(caught.value) == f"{tmp_path / 'missing.toml'}: the configuration file does not exist"
    )


def test_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    default = tmp_path / "etc" / "config.toml"
    default.parent.mkdir()
    default.write_text("[guard]\nmin_held = 3\n")
    loaded = load_config(env={}, cwd=tmp_path, default_config_path=default)
    assert loaded.config_file == default
    assert loaded.settings.guard.min_held == 3
    assert loaded.origins["guard.min_held"] == ValueOrigin("file", default, 2)


def test_file_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path, '[store]\npath = "state.sqlite3"\n[checks]\nca_bundle = "~/ca.pem"\n'
    )
    s = load(tmp_path / "..", config=config).settings
    assert s.store.path == tmp_path / "state.sqlite3"
    assert s.checks.ca_bundle == Path("~/ca.pem").expanduser()


def test_empty_string_unsets_an_optional_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[socket]\ngroup = "admins"\n')
    loaded = load(tmp_path, config=config, env={"CLOSTE_SYNC_SOCKET_GROUP": ""})
    assert loaded.settings.socket.group is None


# -- database.url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "mysql://wp%40user:p%40ss%3Aw%2Frd@db.example:3307/wp%5Fdb",
            DatabaseConnection(
                "mysql", "wp_db", "wp@user", Secret("p@ss:w/rd"), "db.example", 3307
            ),
        ),
        (
            "mysql://u:p@127.0.0.1/db",
            DatabaseConnection("mysql", "db", "u", Secret("p"), "127.0.0.1", 3306),
        ),
        (
            "mysql://u:p@[::1]:3310/db",
            DatabaseConnection("mysql", "db", "u", Secret("p"), "::1", 3310),
        ),
        (
            "mysql:///wp?unix_socket=/var/run/mysqld/mysqld.sock",
            DatabaseConnection(
                "mysql", "wp", "", Secret(""), "localhost", 3306, "/var/run/mysqld/mysqld.sock"
            ),
        ),
        (
            "mysql://root@localhost/wp",
            DatabaseConnection("mysql", "wp", "root", Secret(""), "127.0.0.1", 3306),
        ),
        (
            "sqlite:////srv/wp/wp-content/database/.ht.sqlite",
            DatabaseConnection(
                "sqlite", sqlite_path=Path("/srv/wp/wp-content/database/.ht.sqlite")
            ),
        ),
    ],
)
def test_database_url_forms(tmp_path: Path, url: str, expected: DatabaseConnection) -> None:
    loaded = load(tmp_path, env={"CLOSTE_SYNC_DATABASE_URL": url})
    assert loaded.settings.database.connection == expected
    assert loaded.origins["database.url"] == ValueOrigin("env", variable="CLOSTE_SYNC_DATABASE_URL")


def test_relative_sqlite_url_is_relative_to_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path, '[database]\nurl = "sqlite:///data/wp.sqlite"\n')
    connection = load(tmp_path, config=config).settings.database.connection
    assert connection == DatabaseConnection("sqlite", sqlite_path=tmp_path / "data" / "wp.sqlite")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://u:hunter2secret@h/db", "unsupported scheme 'postgres'"),
        ("mysql://u:hunter2secret@h:99999/db", "the port is not valid"),
        ("mysql://u:hunter2secret@h:port/db", "the port is not valid"),
        ("mysql://u:hunter2secret@h/", "names no database"),
        ("mysql://u:hunter2secret@h/db?ssl=1", "unknown URL parameter(s): ssl"),
        ("sqlite://host/x.sqlite", "a sqlite URL has no host"),
        ("hunter2secret", "unsupported scheme"),
    ],
)
def test_bad_database_url_never_shows_the_password(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env={"CLOSTE_SYNC_DATABASE_URL": url})
    assert message in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_wrong_type_for_a_secret_never_shows_it(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "[closte]\napi_key = 123456789012345\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, config=config)
    assert str(caught.value) == (
        f"{config}:2: [closte] api_key: expected a string, got a whole number"
    )


# -- DB_HOST ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_host", "host", "port", "socket"),
    [
        ("localhost", "localhost", 3306, "SOCKET"),
        ("", "localhost", 3306, "SOCKET"),
        ("localhost:3307", "localhost", 3307, None),
        ("127.0.0.1", "127.0.0.1", 3306, None),
        ("db.example:3306", "db.example", 3306, None),
        ("localhost:/var/run/mysqld/mysqld.sock", "localhost", 3306, "/var/run/mysqld/mysqld.sock"),
        (":/tmp/mysql.sock", "localhost", 3306, "/tmp/mysql.sock"),
        ("[::1]:3306", "::1", 3306, None),
        ("::1", "::1", 3306, None),
        ("[2001:db8::5]:3310", "2001:db8::5", 3310, None),
    ],
)
def test_db_host_forms(
    socket_file: Path, db_host: str, host: str, port: int, socket: str | None
) -> None:
    parsed = parse_db_host(db_host)
    connection = mysql_connection(
        name="db",
        user="u",
        password=Secret("p"),
        host=parsed.host,
        port=parsed.port,
        socket=parsed.socket,
        socket_candidates=[socket_file],
    )
    expected_socket = str(socket_file) if socket == "SOCKET" else socket
    assert (connection.host, connection.port, connection.unix_socket) == (
        host,
        port,
        expected_socket,
    )


@pytest.mark.parametrize(
    ("corpus_file", "describe"),
    [
        ("port_host.php", "mysql://ms_user@db.example:3307/multisite"),
        ("socket_host.php", "mysql://network@unix:/var/run/mysqld/mysqld.sock/network"),
        ("ipv6_host.php", "mysql://v6user@::1:3306/v6"),
        ("bom.php", "mysql://böm@unix:/tmp/mysql.sock/bom_db"),
        ("crlf.php", "mysql://crlf_user@localhost:3307/crlf_db"),
    ],
)
def test_database_from_corpus_files(tmp_path: Path, corpus_file: str, describe: str) -> None:
    root = make_root(tmp_path, corpus_file)
    connection = load(root).settings.database.connection
    assert connection is not None
    assert connection.describe() == describe


def test_port_host_file_facts(tmp_path: Path) -> None:
    loaded = load(make_root(tmp_path, "port_host.php"))
    s = loaded.settings
    assert s.database.base_prefix == "wp2_"
    assert s.checks.network_hosts == ("example.com",)  # DOMAIN_CURRENT_SITE, normalised
    assert s.wordpress.multisite is True  # define('MULTISITE', 1)
    assert s.wordpress.subdomain_install is True  # "1"
    assert s.database.connection is not None
    assert s.database.connection.password == Secret('p$ss"word')


# -- SQLite ------------------------------------------------------------------------------


def test_sqlite_by_db_engine(tmp_path: Path) -> None:
    loaded = load(make_root(tmp_path, "sqlite_integration.php"))
    assert loaded.settings.database.connection == DatabaseConnection(
        "sqlite", sqlite_path=Path("/srv/wp/database/network.sqlite")
    )
    assert loaded.origins["database.url"].line == 3


def test_sqlite_by_drop_in(tmp_path: Path) -> None:
    root = make_root(tmp_path, "stock_sample.php")
    (root / "wp-content" / "db.php").write_text(
        "<?php\n/**\n * Plugin Name: SQLite Database Integration (Drop-in)\n */\n"
        "require_once WP_CONTENT_DIR . '/plugins/sqlite-database-integration/wp-includes/"
        "sqlite/db.php';\n"
    )
    loaded = load(root)
    assert loaded.settings.database.connection == DatabaseConnection(
        "sqlite", sqlite_path=root / "wp-content" / "database" / ".ht.sqlite"
    )
    assert loaded.origins["database.url"] == ValueOrigin(
        "wp-config", root / "wp-content" / "db.php", detail="SQLite Database Integration drop-in"
    )


def test_other_drop_in_is_not_sqlite(tmp_path: Path) -> None:
    root = make_root(tmp_path, "closte_multisite.php")
    (root / "wp-content" / "db.php").write_text("<?php // a caching drop-in\n")
    connection = load(root).settings.database.connection
    assert connection is not None
    assert connection.kind == "mysql"


# -- unreadable constants ----------------------------------------------------------------


def test_unreadable_constants_are_errors_with_the_fix(tmp_path: Path) -> None:
    root = make_root(tmp_path, "bedrock_getenv.php")
    loaded = load(root)
    wp = root / "wp-config.php"
    found = errors(loaded)
    assert (
        f"{wp}:23: DB_PASSWORD: value is a call to getenv(), not a literal; "
        "set [database] url or CLOSTE_SYNC_DATABASE_URL instead"
    ) in found
    assert any(
        m.startswith(f"{wp}:29: CLOSTE_CLIENT_API_KEY:")
        and m.endswith("set [closte] api_key or CLOSTE_SYNC_CLOSTE_API_KEY instead")
        for m in found
    )
    assert any(m.startswith(f"{wp}:27: $table_prefix:") for m in found)
    # DOMAIN_CURRENT_SITE only seeds checks.network_hosts: a warning, not an error.
    assert any(
        p.level is Level.WARNING and "DOMAIN_CURRENT_SITE" in p.message for p in loaded.problems
    )
    assert loaded.settings.database.connection is None
    assert loaded.settings.closte.api_key is None
    # Constants the daemon does not need are not its business.
    assert not any("WP_HOME" in p.message for p in loaded.problems)


def test_explicit_values_turn_unreadable_constants_into_notes(tmp_path: Path) -> None:
    root = make_root(tmp_path, "bedrock_getenv.php")
    env = {
        "CLOSTE_SYNC_DATABASE_URL": "mysql://app:secret-db-pass@127.0.0.1:3306/app",
        "CLOSTE_SYNC_CLOSTE_API_KEY": "explicit-key-0123456789abcdef0123",
        "CLOSTE_SYNC_DATABASE_BASE_PREFIX": "app_",
        "CLOSTE_SYNC_CHECKS_NETWORK_HOSTS": "net.example",
    }
    loaded = load(root, env=env)
    assert errors(loaded) == []
    notes = [p.message for p in loaded.problems if p.level is Level.INFO]
    assert any(
        "DB_PASSWORD" in n and "[database] url from env CLOSTE_SYNC_DATABASE_URL is used" in n
        for n in notes
    )
    assert any("CLOSTE_CLIENT_API_KEY" in n for n in notes)
    assert loaded.settings.database.connection is not None
    assert loaded.settings.database.connection.name == "app"


def test_docker_defaults_that_may_be_secrets_stay_hidden(tmp_path: Path) -> None:
    loaded = load(make_root(tmp_path, "docker_getenv.php"))
    text = "\n".join(str(p) for p in loaded.problems)
    # A secret's expression is described by its shape, quoting none of its text.
    assert "DB_PASSWORD: value is a call to getenv_docker(), not a literal" in text
    assert "WORDPRESS_DB_PASSWORD" not in text and "example password" not in text


def test_duplicates_and_non_multisite_are_warnings(tmp_path: Path) -> None:
    dup = load(make_root(tmp_path / "a", "duplicates.php"))
    warnings = [p.message for p in dup.problems if p.level is Level.WARNING]
    assert any("DB_NAME: defined again (first at line 2)" in w for w in warnings)
    assert dup.settings.database.connection is not None
    assert dup.settings.database.connection.name == "first_db"
    stock = load(make_root(tmp_path / "b", "stock_sample.php"))
    assert any("not a multisite" in p.message for p in stock.problems)
    assert stock.settings.wordpress.multisite is None


def test_missing_db_constants_are_named(tmp_path: Path) -> None:
    root = tmp_path / "wp"
    root.mkdir()
    (root / "wp-config.php").write_text("<?php\ndefine('DB_NAME', 'x');\ndefine('MULTISITE', 1);\n")
    assert errors(load(root)) == [
        f"{root / 'wp-config.php'}: DB_USER, DB_PASSWORD, DB_HOST not defined; "
        "set [database] url or CLOSTE_SYNC_DATABASE_URL"
    ]


def test_a_folder_named_wp_config_is_not_the_file(tmp_path: Path) -> None:
    root = tmp_path / "wp"
    (root / "wp-config.php").mkdir(parents=True)  # a folder where the file should be
    (root / "wp-settings.php").touch()
    (tmp_path / "wp-config.php").write_text("<?php define('DB_NAME', 'x');")
    loaded = load(root)
    # WordPress would read the one above; so does the loader.
    assert loaded.wp_config == tmp_path / "wp-config.php"


# -- secrets -----------------------------------------------------------------------------


def test_secrets_never_reach_repr_or_origins(tmp_path: Path) -> None:
    loaded = load(make_root(tmp_path))
    text = repr(loaded)
    assert CLOSTE_KEY not in text
    assert CLOSTE_DB_PASSWORD not in text
    assert "c1f0… (32 chars)" in text
