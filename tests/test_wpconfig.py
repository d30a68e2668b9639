"""Reading wp-config.php as text: a corpus of real-world shapes, and the PHP rules one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from closte_sync.daemon.config.wpconfig import (
    TABLE_PREFIX,
    Defined,
    Unreadable,
    WpConfig,
    parse_wp_config,
    php_truthy,
    read_wp_config,
)

CORPUS: Final = Path(__file__).parent / "data" / "wpconfig"
UNREADABLE: Final = object()  # expected: the constant is there but not a literal

EXPECTED: Final[dict[str, dict[str, object]]] = {
    "stock_sample.php": {
        "DB_NAME": "database_name_here",
        "DB_USER": "username_here",
        "DB_PASSWORD": "password_here",
        "DB_HOST": "localhost",
        "DB_COLLATE": "",
        "AUTH_KEY": "put your unique phrase here",
        "WP_DEBUG": False,
        TABLE_PREFIX: "wp_",
        "ABSPATH": UNREADABLE,
        "MULTISITE": None,
        "CLOSTE_CLIENT_API_KEY": None,
    },
    "closte_multisite.php": {
        "DB_NAME": "wpdb_k3x9q2",
        "DB_PASSWORD": "q8#Zr!v2$Lp0@mWn",
        "DB_HOST": "localhost",
        "AUTH_KEY": "7|R-+w9]P;x7$Wc3~k:Qa@,mT#d(J^!z5`YhB{e1&L0o/NuVs>gFq<iC6)rDt8Zb",
        "MULTISITE": True,
        "SUBDOMAIN_INSTALL": True,
        "DOMAIN_CURRENT_SITE": "network.example.com",
        "SITE_ID_CURRENT_SITE": 1,
        "CLOSTE_CLIENT_API_KEY": "c1f0e7d2a9b84c3e8f5a6b7c8d9e0f1a",
        TABLE_PREFIX: "wp_",
    },
    "bedrock_getenv.php": {
        "DB_NAME": UNREADABLE,
        "DB_USER": UNREADABLE,
        "DB_PASSWORD": UNREADABLE,
        "DB_HOST": UNREADABLE,
        "DB_CHARSET": "utf8mb4",
        "CLOSTE_CLIENT_API_KEY": UNREADABLE,
        "CONTENT_DIR": "/app",
        "WP_CONTENT_DIR": UNREADABLE,
        "MULTISITE": True,
        "DOMAIN_CURRENT_SITE": UNREADABLE,
        TABLE_PREFIX: UNREADABLE,
    },
    "docker_getenv.php": {
        "DB_NAME": UNREADABLE,
        "DB_USER": UNREADABLE,
        "DB_PASSWORD": UNREADABLE,
        "DB_HOST": UNREADABLE,
        "WP_DEBUG": UNREADABLE,
        TABLE_PREFIX: UNREADABLE,
        "MULTISITE": None,
    },
    "socket_host.php": {
        "DB_HOST": "localhost:/var/run/mysqld/mysqld.sock",
        "SUBDOMAIN_INSTALL": False,
        "DOMAIN_CURRENT_SITE": "example.org",
        TABLE_PREFIX: "net_",
    },
    "port_host.php": {
        "DB_PASSWORD": 'p$ss"word',
        "DB_HOST": "db.example:3307",
        "MULTISITE": 1,
        "SUBDOMAIN_INSTALL": "1",
        TABLE_PREFIX: "wp2_",
    },
    "ipv6_host.php": {"DB_HOST": "[::1]:3306", "DB_PASSWORD": ""},
    "sqlite_integration.php": {
        "DB_ENGINE": "sqlite",
        "DB_DIR": "/srv/wp/database/",
        "DB_FILE": "network.sqlite",
    },
    "odd_style.php": {
        "DB_NAME": "odd_db",
        "DB_USER": "odd_user",
        "DB_PASSWORD": "pa//ss#word/*not a comment*/",
        "DB_HOST": "127.0.0.1",
        "CLOSTE_CLIENT_API_KEY": "0123456789abcdef0123456789abcdef",
        "MULTISITE": True,
        "SUBDOMAIN_INSTALL": False,
        "WP_MEMORY_LIMIT": 256,
        "RATIO": 1500.0,
        "NEGATIVE": -42,
        "NOTHING": None,
        "OCTAL": 0o755,
        TABLE_PREFIX: "odd_",
        "IGNORED": None,
        "IGNORED2": None,
        "IGNORED3": None,
    },
    "crlf.php": {
        "DB_NAME": "crlf_db",
        "DB_PASSWORD": "line1\r\nline2",
        "DB_HOST": "localhost:3307",
        "MULTISITE": True,
        TABLE_PREFIX: "crlf_",
    },
    "bom.php": {
        "DB_NAME": "bom_db",
        "DB_USER": "böm",
        "DB_PASSWORD": "päss",
        "DB_HOST": ":/tmp/mysql.sock",
        "DOMAIN_CURRENT_SITE": "bücher.example",
    },
    "duplicates.php": {
        "DB_NAME": "first_db",
        "DB_USER": "dup_user",
        "DB_PASSWORD": "dup_pass",
        "CLOSTE_CLIENT_API_KEY": "guarded-key-0123456789abcdef0123",
        TABLE_PREFIX: "new_",  # a variable keeps its last value
    },
    "heredoc_escapes.php": {
        "DB_NAME": "heredoc_db",
        "DB_USER": "raw\\n$user",
        "DB_PASSWORD": "tab\thereAA\U0001f512\\end\\q",
        "DB_HOST": "single 'quoted' \\ \\n",
        TABLE_PREFIX: "wp_",
    },
    "unreadable_mix.php": {
        "DB_NAME": UNREADABLE,
        "DB_USER": UNREADABLE,
        "DB_PASSWORD": UNREADABLE,
        "DB_HOST": UNREADABLE,
        "CLOSTE_CLIENT_API_KEY": UNREADABLE,
        "DOMAIN_CURRENT_SITE": "mix.example",
        "MULTISITE": True,
    },
}

# (kind, line, name) of every problem the reader must report for each file.
EXPECTED_PROBLEMS: Final[dict[str, set[tuple[str, int, str | None]]]] = {
    "stock_sample.php": {("unreadable", 95, "ABSPATH")},
    "closte_multisite.php": {("unreadable", 39, "ABSPATH")},
    "duplicates.php": {("duplicate", 6, "DB_NAME")},
    "crlf.php": set(),
    "bom.php": set(),
    "odd_style.php": set(),
    "heredoc_escapes.php": set(),
    "docker_getenv.php": {
        ("unreadable", line, name)
        for line, name in [
            (24, "DB_NAME"),
            (27, "DB_USER"),
            (30, "DB_PASSWORD"),
            (39, "DB_HOST"),
            (42, "DB_CHARSET"),
            (45, "DB_COLLATE"),
            (49, "WP_DEBUG"),
            (68, "ABSPATH"),
        ]
    },
}


def _read(name: str) -> WpConfig:
    return read_wp_config(CORPUS / name)


def test_corpus_is_complete() -> None:
    files = {path.name for path in CORPUS.glob("*.php")}
    assert files == set(EXPECTED)
    assert len(files) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_values(name: str) -> None:
    config = _read(name)
    for constant, expected in EXPECTED[name].items():
        found = config.get(constant)
        if expected is UNREADABLE:
            assert isinstance(found, Unreadable), f"{name}: {constant} should be unreadable"
        elif expected is None and constant not in ("NOTHING",):
            assert found is None, f"{name}: {constant} should not be defined"
        else:
            assert isinstance(found, Defined), f"{name}: {constant} missing"
            assert found.value == expected
            assert type(found.value) is type(expected)


@pytest.mark.parametrize("name", sorted(EXPECTED_PROBLEMS))
def test_corpus_problems(name: str) -> None:
    config = _read(name)
    assert {(p.kind, p.line, p.name) for p in config.problems} == EXPECTED_PROBLEMS[name]


def test_corpus_files_really_have_their_odd_bytes() -> None:
    # Guards against an editor or a checkout normalising the very thing under test.
    assert b"\r\n" in (CORPUS / "crlf.php").read_bytes()
    assert (CORPUS / "bom.php").read_bytes().startswith(b"\xef\xbb\xbf<?php")


def test_lines_are_counted_with_crlf_endings() -> None:
    config = _read("crlf.php")
    assert config.get("DB_NAME") == Defined("DB_NAME", "crlf_db", 3)
    assert config.get("MULTISITE") == Defined("MULTISITE", True, 9)


def test_unreadable_message_names_file_line_constant_and_expression() -> None:
    config = _read("bedrock_getenv.php")
    [problem] = [p for p in config.problems if p.name == "DB_PASSWORD"]
    assert str(problem) == (
        f"{CORPUS / 'bedrock_getenv.php'}:23: DB_PASSWORD: "
        "value is a call to getenv(), not a literal"
    )
    [home] = [p for p in config.problems if p.name == "WP_HOME"]
    assert "getenv('WP_HOME')" in str(home)  # not a secret: shown as written


def test_secret_expressions_are_described_by_shape_only() -> None:
    docker = _read("docker_getenv.php")
    password = docker.get("DB_PASSWORD")
    assert isinstance(password, Unreadable)
    assert password.reason == "value is a call to getenv_docker(), not a literal"
    mixed = _read("unreadable_mix.php")
    key = mixed.get("CLOSTE_CLIENT_API_KEY")
    assert isinstance(key, Unreadable)
    assert key.reason == "value is a null-coalescing expression (??), not a literal"
    for config in (docker, mixed):
        text = "\n".join(str(p) for p in config.problems)
        for literal in (
            "example password",
            "WORDPRESS_DB_PASSWORD",
            "fallback-key-secret-value",
            "CLOSTE_KEY",
            "/run/secrets/db_password",
        ):
            assert literal not in text
    # A non-secret constant keeps its expression as written.
    user = docker.get("DB_USER")
    assert isinstance(user, Unreadable)
    assert "'example username'" in user.reason


def test_comments_hide_defines_in_every_style() -> None:
    config = _read("odd_style.php")
    assert config.value("DB_HOST") == "127.0.0.1"
    assert config.value("CLOSTE_CLIENT_API_KEY") == "0123456789abcdef0123456789abcdef"


def _parse(text: str) -> WpConfig:
    return parse_wp_config(text, Path("/srv/www/wp-config.php"))


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r"'a\'b'", "a'b"),
        (r"'a\\b'", "a\\b"),
        (r"'a\nb'", "a\\nb"),
        (r"'a\\\'b'", "a\\'b"),
        (r'"a\nb\tc"', "a\nb\tc"),
        (r'"\x41\101\u{263A}"', "AA\u263a"),
        (r'"\u{1F600}"', "\U0001f600"),
        (r'"\$HOME \"q\" \\"', '$HOME "q" \\'),
        (r'"\q \u \x"', "\\q \\u \\x"),
        (r'"cost: $5"', "cost: $5"),
        (r'"\e\v\f\r"', "\x1b\v\f\r"),
        (r'"\400"', "\x00"),  # PHP keeps the low byte of an octal escape
        ("0x1A", 26),
        ("0b101", 5),
        ("0o17", 15),
        ("017", 15),
        ("1_000_000", 1_000_000),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("-7", -7),
        ("+7", 7),
        ("9223372036854775808", 9.223372036854775808e18),
        ("TRUE", True),
        ("False", False),
        ("NULL", None),
        ("\\true", True),
        ("('wrapped')", "wrapped"),
    ],
)
def test_literals(literal: str, value: object) -> None:
    config = _parse(f"<?php\ndefine('X', {literal});\n")
    found = config.get("X")
    assert isinstance(found, Defined), config.problems
    assert found.value == value
    assert type(found.value) is type(value)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("getenv('X')", "value is an expression (getenv('X')), not a literal"),
        ("'a' . 'b'", "value is an expression ('a' . 'b'), not a literal"),
        ("OTHER", "value is an expression (OTHER), not a literal"),
        ("$x", "value is an expression ($x), not a literal"),
        ('"db-$host"', "value is a string that interpolates the variable $host, not a literal"),
        ("\"{$cfg['x']}\"", "value is a string that interpolates an expression ({$...})"),
        ("'\\xff'", "value is an expression ('\\xff'), not a literal"),
        ('"\\xff"', "value is not valid UTF-8 text"),
        ('"\\u{110000}"', "beyond U+10FFFF"),
        ("09", "09 is not a valid PHP number"),
    ],
)
def test_unreadable_values(expression: str, reason: str) -> None:
    config = _parse(f"<?php\ndefine('X', {expression});\ndefine('AFTER', 'ok');\n")
    found = config.get("X")
    if expression == "'\\xff'":
        # Single quotes know no \x escape: this one is a readable literal.
        assert found == Defined("X", "\\xff", 2)
    else:
        assert isinstance(found, Unreadable)
        assert reason in found.reason
        assert [(p.kind, p.line, p.name) for p in config.problems] == [("unreadable", 2, "X")]
    assert config.value("AFTER") == "ok"  # one bad constant does not stop the rest


def test_define_inside_a_comment_is_ignored() -> None:
    config = _parse(
        "<?php\n// define('A', 1);\n# define('B', 2);\n/* define('C', 3); */\n"
        "/** define('D', 4); */ define('E', 5); # define('F', 6);\n"
    )
    assert set(config.definitions) == {"E"}


def test_line_comment_ends_at_close_tag() -> None:
    config = _parse("<?php // comment ?>define('HTML', 1);<?php define('PHP', 2);\n")
    assert set(config.definitions) == {"PHP"}


def test_inline_html_before_open_tag_is_not_php() -> None:
    config = _parse("define('HTML', 1);\n<?php\ndefine('PHP', 2);\n")
    assert set(config.definitions) == {"PHP"}
    assert config.get("PHP") == Defined("PHP", 2, 3)


def test_file_without_open_tag_defines_nothing() -> None:
    assert _parse("define('X', 1);").definitions == {}


def test_third_argument_and_odd_spacing() -> None:
    config = _parse("<?php DEFINE\t(\n\"X\"\n,\n'y'\n,\ntrue\n)\n;")
    assert config.get("X") == Defined("X", "y", 1)


def test_guarded_forms_keep_first_value_without_warning() -> None:
    config = _parse(
        "<?php\ndefine('A', 1);\n"
        "defined('A') || define('A', 2);\n"
        "if (!defined('A')) define('A', 3);\n"
        "if ( ! defined( 'A' ) ) { define( 'A', 4 ); }\n"
        "define('A', 5);\n"
    )
    assert config.value("A") == 1
    assert [(p.kind, p.line) for p in config.problems] == [("duplicate", 6)]
    assert "first at line 2" in config.problems[0].message


def test_guarded_define_alone_is_read() -> None:
    config = _parse("<?php\ndefined('WP_DEBUG') or define('WP_DEBUG', true);\n")
    assert config.value("WP_DEBUG") is True


def test_method_and_namespaced_calls_are_not_define() -> None:
    config = _parse(
        "<?php $o->define('A', 1); $o?->define('B', 1); X::define('C', 1);\n"
        "function define2() {} My\\define('D', 1); \\define('E', 1);\n"
    )
    assert set(config.definitions) == {"E"}


def test_heredoc_and_nowdoc() -> None:
    config = _parse(
        '<?php\ndefine(\'H\', <<<"EOT"\n  a\\tb "q" \\"\n  EOT);\n'
        "define('N', <<<'EOT'\nraw \\t $x\nEOT\n);\n"
        "define('E', <<<EOT\nEOT);\n"
    )
    assert config.value("H") == 'a\tb "q" \\"'
    assert config.value("N") == "raw \\t $x"
    assert config.value("E") == ""


def test_table_prefix_forms() -> None:
    assert _parse('<?php $table_prefix  =  "wp_" ;').value(TABLE_PREFIX) == "wp_"
    config = _parse("<?php\n$table_prefix = getenv('P') ?: 'wp_';\n")
    found = config.get(TABLE_PREFIX)
    assert isinstance(found, Unreadable)
    assert found.line == 2
    # Comparison, not assignment.
    assert _parse("<?php if ($table_prefix == 'x') {}").get(TABLE_PREFIX) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<?php define('A', 'x';\ndefine('B', 1);", "define( has no closing parenthesis"),
        ("<?php define('A');\ndefine('B', 1);", "needs a constant name and a value"),
        ("<?php define(A_NAME, 1);\ndefine('B', 1);", "name is not a string literal"),
        ("<?php define('B', 1);\n/* never closed", "comment /* is never closed"),
        ("<?php define('B', 1);\n$x = 'never closed", "single-quoted string is never closed"),
        ("<?php define('B', 1);\n$x = \"never closed", "double-quoted string is never closed"),
        ("<?php define('B', 1);\n$x = <<<EOT\nno end", "heredoc <<<EOT is never closed"),
    ],
)
def test_syntax_problems_are_reported_not_raised(text: str, message: str) -> None:
    config = _parse(text)
    assert config.value("B") == 1
    assert any(p.kind == "syntax" and message in p.message for p in config.problems)
    assert all(str(p).startswith("/srv/www/wp-config.php:") for p in config.problems)


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    config = read_wp_config(tmp_path / "wp-config.php")
    assert config.definitions == {}
    [problem] = config.problems
    assert problem.kind == "io"
    assert str(tmp_path / "wp-config.php") in str(problem)


def test_invalid_utf8_elsewhere_does_not_spoil_the_file() -> None:
    data = b"<?php\n// caf\xe9\ndefine('A', 'ok');\ndefine('B', '\xff');\n"
    config = parse_wp_config(data, Path("wp-config.php"))
    assert config.value("A") == "ok"
    found = config.get("B")
    assert isinstance(found, Unreadable)
    assert "UTF-8" in found.reason


@pytest.mark.parametrize(
    ("value", "truthy"),
    [(True, True), (False, False), (None, False), ("", False), ("0", False), ("false", True),
     (0, False), (1, True), (0.0, False), ("1", True)],
)  # fmt: skip
def test_php_truthiness(value: object, truthy: bool) -> None:
    assert php_truthy(value) is truthy  # type: ignore[arg-type]


def test_top_level_const_declarations() -> None:
    config = _parse(
        "<?php\nconst A = 'a', B = getenv('X');\n"
        "class K { const IGNORED = 1; }\n"
        "if (true) { $x = 1; }\n"
        "const C = 3;\nconst A = 'again';\n"
    )
    assert config.get("A") == Defined("A", "a", 2)
    assert config.get("C") == Defined("C", 3, 5)
    assert isinstance(config.get("B"), Unreadable)
    assert config.get("IGNORED") is None  # a class constant, not a global one
    assert [(p.kind, p.line, p.name) for p in config.problems] == [
        ("unreadable", 2, "B"),
        ("duplicate", 6, "A"),
    ]


# -- secrets never echoed ----------------------------------------------------------------------

_SECRET_EXAMPLES = """<?php
define('DB_PASSWORD', base64_decode('c2VjcmV0'));
define( 'CLOSTE_CLIENT_API_KEY', trim('ck_live_abc123def456ghi789') );
"""


def test_the_briefs_two_examples_name_place_and_shape_without_any_text() -> None:
    config = _parse(_SECRET_EXAMPLES)
    texts = [str(p) for p in config.problems]
    assert texts == [
        "/srv/www/wp-config.php:2: DB_PASSWORD: value is a call to base64_decode(), not a literal",
        "/srv/www/wp-config.php:3: CLOSTE_CLIENT_API_KEY: value is a call to trim(), not a literal",
    ]
    joined = "\n".join(texts)
    for secret in ("c2VjcmV0", "secret", "ck_live", "abc123def456ghi789", "ck_l"):
        assert secret not in joined


# Every piece of text in these expressions carries "Qz": none may reach the message.
@pytest.mark.parametrize(
    ("expression", "shape"),
    [
        ("'Qzpre' . 'Qzfix' . getenv('QzX')", "a concatenation of 3 parts"),
        ("getenv('QzX') ?: 'Qzfallback'", "a conditional expression (?:)"),
        ("$_ENV['QzX'] ?? 'Qzfallback'", "a null-coalescing expression (??)"),
        ("QzOTHER_CONSTANT", "another constant"),
        ("$Qzsecret", "a variable"),
        ("\\Vault\\Client::get('Qzdb')", "a call to \\Vault\\Client::get()"),
        ('"Qzpa$Qzword"', "a string that interpolates a variable or an expression"),
        ("098712", "not a valid PHP number"),
        ("['Qzs3cr3t']", "an array"),
    ],
)
@pytest.mark.parametrize("name", ["DB_PASSWORD", "AUTH_SALT", "MY_TOKEN", "X_SECRET", "KEYRING"])
def test_a_secret_constants_error_quotes_none_of_its_text(
    name: str, expression: str, shape: str
) -> None:
    config = _parse(f"<?php\ndefine('{name}', {expression});\n")
    [problem] = config.problems
    text = str(problem)
    assert text.startswith(f"/srv/www/wp-config.php:2: {name}: value is")
    assert shape in text
    assert "Qz" not in text.replace(name, "") and "98712" not in text
