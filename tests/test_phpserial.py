"""Reading PHP-serialized network options: a parser, never an evaluator."""

from __future__ import annotations

import contextlib

import phpserialize
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closte_sync.daemon.sources.database.phpserial import (
    MAX_VALUE_BYTES,
    PhpSerialError,
    php_unserialize,
)


def test_the_plugins_settings_array() -> None:
    value = 'a:3:{s:18:"dns_check_interval";i:120;s:6:"closte";b:1;s:4:"name";s:5:"Ünï";}'
    assert php_unserialize(value) == {"dns_check_interval": 120, "closte": True, "name": "Ünï"}


def test_integer_keys_and_nested_arrays() -> None:
    assert php_unserialize('a:1:{i:0;a:1:{s:1:"k";d:1.5;}}') == {0: {"k": 1.5}}
    assert php_unserialize("N;") is None


@pytest.mark.parametrize(
    "value",
    [
        'O:8:"stdClass":1:{s:1:"a";i:1;}',  # an object: PHP would run its magic methods
        'a:1:{s:1:"x";O:8:"stdClass":0:{}}',  # an object inside an array
        'C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}',  # a custom-serialized object
    ],
)
def test_objects_are_refused(value: str) -> None:
    with pytest.raises(PhpSerialError):
        php_unserialize(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("i:1;garbage", "unexpected bytes"),
        ('s:10:"short";', "not a PHP-serialized"),
        ("a:1:{i:0;i:1;", "not a PHP-serialized"),
        ("plain text", "not a PHP-serialized"),
        ("", "not a PHP-serialized"),
        (b's:2:"\xff\xfe";', "not a PHP-serialized"),
    ],
)
def test_malformed_values_are_one_clear_error(value: str | bytes, why: str) -> None:
    with pytest.raises(PhpSerialError, match=why):
        php_unserialize(value)


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    depth = 5000
    value = "a:1:{i:0;" * depth + "N;" + "}" * depth
    with pytest.raises(PhpSerialError, match="nested too deeply"):
        php_unserialize(value)


def test_oversized_values_are_refused_before_parsing() -> None:
    value = f's:{MAX_VALUE_BYTES + 1}:"' + "x" * (MAX_VALUE_BYTES + 1) + '";'
    with pytest.raises(PhpSerialError, match="too large"):
        php_unserialize(value)


_scalars = st.one_of(
    st.integers(min_value=-(2**62), max_value=2**62),
    st.booleans(),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(deadline=None)  # a busy machine must not turn a slow example into a failure
@given(st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=6))
def test_what_php_serializes_reads_back(settings: dict[str, object]) -> None:
    assert php_unserialize(phpserialize.dumps(settings)) == settings


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_value_or_the_one_error(data: bytes) -> None:
    with contextlib.suppress(PhpSerialError):
        php_unserialize(data)
