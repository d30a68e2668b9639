"""Hostile input to every reader of outside text: the domains file, wp-config.php,
PHP-serialized options and the control socket's lines. None raises anything but its own
error type, none hangs (each example is bounded by the test's timeout; the pathological
cases below are large on purpose), and every problem names its place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closte_sync.daemon.config.wpconfig import parse_wp_config
from closte_sync.daemon.sources.database.phpserial import PhpSerialError, php_unserialize
from closte_sync.daemon.sources.domains_file import decode_domains_bytes, parse_domains_text
from closte_sync.shared.protocol import (
    ErrorCode,
    LineSplitter,
    ProtocolError,
    decode_message,
    decode_request,
)

DOMAINS_PATH = "/etc/closte-sync/domains.txt"
WP_CONFIG = Path("/srv/www/wp-config.php")

# Pieces that look like the real thing, so the fuzzing reaches past the first check.
DOMAIN_PIECES = st.sampled_from(
    ["a.com", "*.w.com", "xn--bcher-kva.com", "bücher.de", "#", " ", "\t", "\n", "\r\n",
     "..", "-", "_", "*", "\ufeff", "\x00", "a" * 64, ".", "é", "\udc80", "1.2.3.4", "ß"]
)  # fmt: skip
PHP_PIECES = st.sampled_from(
    ["<?php", "?>", "define(", "'DB_PASSWORD'", "'CLOSTE_CLIENT_API_KEY'", ",", ");", "(",
     ")", "'", '"', "\\", "$table_prefix", "=", ";", "/*", "*/", "//", "#", "\n", "getenv(",
     "<<<EOT\n", "\nEOT;", "true", "0x1F", "1e9", "const ", "if (!defined(", "||", "${", "{",
     "}", "'wp_'", "null", "-", "9" * 30]
)  # fmt: skip
SERIAL_PIECES = st.sampled_from(
    ["a:", "s:", "i:", "b:", "d:", "N;", "O:", "C:", "r:", "R:", "1", "2", "-1", "99999999",
     ":", ";", "{", "}", '"', "x", "\x00", "é"]
)  # fmt: skip


def joined(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=60).map("".join)


# -- the domains file ----------------------------------------------------------------------


def check_domains(text: str) -> None:
    domains, problems = parse_domains_text(text, DOMAINS_PATH)
    line_count = len(text.removeprefix("\ufeff").split("\n"))
    for problem in problems:
        match = re.fullmatch(re.escape(DOMAINS_PATH) + r":(\d+)", problem.place)
        assert match is not None, problem
        assert 1 <= int(match.group(1)) <= line_count
        assert problem.message.strip()
    for name, domain in domains.items():
        assert domain.name == name and name.isascii() and name == name.lower()
        assert domain.place.startswith(DOMAINS_PATH + ":")


@given(joined(DOMAIN_PIECES))
def test_domains_text_is_read_line_by_line_whatever_it_holds(text: str) -> None:
    check_domains(text)


@given(st.binary(max_size=400))
def test_domains_file_bytes_of_any_kind_are_read_or_reported(data: bytes) -> None:
    check_domains(decode_domains_bytes(data))


def test_a_huge_domains_file_of_junk_is_read_and_reported() -> None:
    text = ("x" * 300 + " y\n") * 3000 + "\x00" * 100_000 + "\n" + "a." * 50_000
    _domains, problems = parse_domains_text(text, DOMAINS_PATH)
    assert len(problems) >= 3000


# -- wp-config.php ------------------------------------------------------------------------


def check_wp_config(data: bytes | str) -> None:
    config = parse_wp_config(data, WP_CONFIG)  # never raises
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    last_line = text.count("\n") + 1
    for problem in config.problems:
        assert str(problem).startswith(f"{WP_CONFIG}:"), problem
        assert 0 <= problem.line <= last_line, problem
        assert problem.message.strip()


@given(joined(PHP_PIECES))
def test_wp_config_text_never_raises_and_names_each_problems_line(text: str) -> None:
    check_wp_config(text)


@given(st.binary(max_size=400))
def test_wp_config_bytes_never_raise(data: bytes) -> None:
    check_wp_config(data)


@pytest.mark.parametrize(
    "text",
    [
        "<?php " + "(" * 50_000,
        "<?php " + "define(" * 20_000,
        "<?php define('A', " + "[" * 20_000,
        "<?php /* " + "x" * 500_000,
        "<?php $table_prefix = '" + "\\" * 100_001,
        "<?php <<<EOT\n" + "line\n" * 50_000,
    ],
    ids=["parens", "defines", "brackets", "comment", "backslashes", "heredoc"],
)
def test_pathological_wp_configs_finish(text: str) -> None:
    check_wp_config(text)


# -- PHP-serialized options ----------------------------------------------------------------


def check_serial(value: str | bytes) -> None:
    try:
        php_unserialize(value)
    except PhpSerialError as exc:
        assert str(exc).strip()


@given(joined(SERIAL_PIECES))
def test_php_serialized_text_parses_or_fails_with_its_own_error(text: str) -> None:
    check_serial(text)


@given(st.binary(max_size=300))
def test_php_serialized_bytes_parse_or_fail_with_its_own_error(data: bytes) -> None:
    check_serial(data)


@given(st.integers(min_value=0, max_value=60), st.binary(min_size=1, max_size=3))
def test_a_damaged_settings_value_fails_with_its_own_error(cut: int, junk: bytes) -> None:
    good = b'a:2:{s:18:"dns_check_interval";i:120;s:13:"enable_domain";b:1;}'
    check_serial(good[:cut] + junk + good[cut:])


@pytest.mark.parametrize(
    "value",
    ["a:1:{i:0;" * 5_000 + "N;" + "}" * 5_000, 's:999999999:"x";', "a:99999999:{}", "O:8:"],
    ids=["deep", "long-string", "many-items", "object"],
)
def test_pathological_serialized_values_fail_cleanly(value: str) -> None:
    check_serial(value)


# -- the socket protocol -------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
MESSAGE_KEYS = st.sampled_from(["v", "id", "op", "args", "ok", "push", "data", "error", "x"])
MESSAGES = st.dictionaries(MESSAGE_KEYS, JSON_VALUES | st.sampled_from([1, "status"]))


def check_decode(line: bytes) -> None:
    for decode in (decode_request, decode_message):
        try:
            decode(line)
        except ProtocolError as exc:
            assert isinstance(exc.code, ErrorCode) and exc.message.strip()


@given(st.binary(max_size=300))
def test_any_bytes_on_the_socket_decode_or_fail_with_a_protocol_error(line: bytes) -> None:
    check_decode(line)


@given(MESSAGES)
def test_any_json_object_decodes_or_fails_with_a_protocol_error(message: dict[str, object]) -> None:
    check_decode(json.dumps(message).encode())


@given(st.lists(st.binary(max_size=80), max_size=30), st.integers(min_value=1, max_value=64))
def test_the_line_splitter_never_yields_a_line_over_its_limit(
    chunks: list[bytes], limit: int
) -> None:
    splitter = LineSplitter(limit)
    whole = b"".join(chunks)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert all(line is None or len(line) <= limit for line in lines)
    assert len(lines) <= whole.count(b"\n") + len(chunks)
    kept = [line for line in lines if line is not None]
    assert all(line in whole.split(b"\n") for line in kept)


def test_deeply_nested_json_on_the_socket_is_a_protocol_error() -> None:
    line = b"[" * 10_000 + b"]" * 10_000  # 20 KB: a line the server reads in full
    with pytest.raises(ProtocolError) as caught:
        decode_request(line)
    assert caught.value.code is ErrorCode.MALFORMED
