"""Domain-name validation and normalisation (closte_sync.shared.domains)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from closte_sync.shared.domains import (
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    DomainError,
    DomainName,
    display,
    is_wildcard,
    normalize_domain,
    parse_domain,
    to_unicode,
)


def reason_for(text: str) -> str:
    with pytest.raises(DomainError) as caught:
        normalize_domain(text)
    assert caught.value.text == text
    return caught.value.reason


def name_of_length(total: int) -> str:
    """A valid ASCII name exactly ``total`` (at least 5) characters long: "aaa.aaa....com"."""
    labels: list[str] = []
    left = total - len(".com")
    while left > 0:
        size = min(MAX_LABEL_LENGTH, left)
        if left - size == 1:  # one character left is a dot with nothing after it
            size -= 1
        labels.append("a" * size)
        left -= size + 1
    name = ".".join([*labels, "com"])
    assert len(name) == total
    return name


# -- lengths ----------------------------------------------------------------------------------


def test_a_label_of_63_is_fine_and_64_is_too_long() -> None:
    assert normalize_domain("a" * 63 + ".com") == "a" * 63 + ".com"
    assert "label too long" in reason_for("a" * 64 + ".com")


def test_a_unicode_label_is_measured_in_its_encoded_form() -> None:
    # 60 letters plus one "ü" encode to well over 63 ASCII characters.
    assert "label too long" in reason_for("ü" + "a" * 60 + ".de")


@pytest.mark.parametrize("total", [5, 67, 68, 100, 252, 253])
def test_names_up_to_253_characters_are_fine(total: int) -> None:
    name = name_of_length(total)
    assert normalize_domain(name) == name


def test_a_name_of_254_characters_is_too_long() -> None:
    reason = reason_for(name_of_length(254))
    assert "name too long" in reason and "254" in reason


def test_a_trailing_dot_does_not_count_towards_the_length() -> None:
    name = name_of_length(MAX_NAME_LENGTH)
    assert normalize_domain(name + ".") == name


def test_the_wildcard_label_counts_towards_the_length() -> None:
    assert normalize_domain("*." + name_of_length(251)) == "*." + name_of_length(251)
    assert "name too long" in reason_for("*." + name_of_length(252))


# -- characters and shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("bad_name.com", "bad character '_'"),
        ("user@example.com", "bad character '@'"),
        ("shop!.com", "bad character '!'"),
        ("nul\x00.com", "bad character '\\x00'"),
        ("-shop.com", "may not start or end with '-'"),
        ("shop-.com", "may not start or end with '-'"),
        ("shop example.com", "white space"),
        ("shop\texample.com", "white space"),
        ("", "empty name"),
        ("   ", "empty name"),
        (".", "empty name"),
        ("a..com", "empty label"),
        (".example.com", "empty label"),
        ("example.com..", "empty label"),
        ("localhost", "not a domain"),
        ("com.", "not a domain"),
    ],
)
def test_bad_names_say_why(text: str, reason: str) -> None:
    assert reason in reason_for(text)


@pytest.mark.parametrize("text", ["192.168.1.1", "10.0.0.1.", "example.123"])
def test_ip_addresses_and_numeric_top_labels_are_refused(text: str) -> None:
    assert "IP address" in reason_for(text)


@pytest.mark.parametrize("text", ["::1", "[2001:db8::1]", "example.com:8443"])
def test_ports_and_ipv6_addresses_are_refused(text: str) -> None:
    assert "':'" in reason_for(text)


@pytest.mark.parametrize(
    "text", ["https://example.com", "http://example.com/shop", "example.com/shop", "//x.com"]
)
def test_urls_are_refused_with_a_hint(text: str) -> None:
    assert "URL" in reason_for(text)


def test_numeric_labels_below_the_top_are_fine() -> None:
    assert normalize_domain("123.example.com") == "123.example.com"
    assert normalize_domain("3com.com") == "3com.com"


def test_a_trailing_dot_and_surrounding_blanks_are_dropped() -> None:
    assert normalize_domain("  example.com.\n") == "example.com"


def test_case_is_folded() -> None:
    assert normalize_domain("Shop.EXAMPLE.com") == "shop.example.com"
    assert normalize_domain("BÜCHER.de") == "xn--bcher-kva.de"
    assert (
        normalize_domain("\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com") == "example.com"
    )  # full-width


# -- wildcards --------------------------------------------------------------------------------


def test_wildcard_forms() -> None:
    assert normalize_domain("*.Example.com") == "*.example.com"
    assert normalize_domain("*.bücher.de") == "*.xn--bcher-kva.de"
    assert is_wildcard("*.example.com") and not is_wildcard("example.com")
    assert parse_domain("*.example.com").is_wildcard


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("*.*.example.com", "'*' is only allowed"),
        ("shop.*.example.com", "'*' is only allowed"),
        ("*example.com", "'*' is only allowed"),
        ("*", "'*' is only allowed"),
        ("*.", "'*' is only allowed"),
        ("*.com", "not a domain"),
        ("*..com", "empty label"),
    ],
)
def test_bad_wildcards_say_why(text: str, reason: str) -> None:
    assert reason in reason_for(text)


# -- international names ----------------------------------------------------------------------


def test_unicode_is_stored_as_punycode_and_shown_both_ways() -> None:
    assert normalize_domain("bücher.de") == "xn--bcher-kva.de"
    assert to_unicode("xn--bcher-kva.de") == "bücher.de"
    assert to_unicode("*.xn--bcher-kva.de") == "*.bücher.de"
    assert display("xn--bcher-kva.de") == "bücher.de (xn--bcher-kva.de)"
    assert display("example.com") == "example.com"
    name = parse_domain("bücher.de")
    assert name == DomainName("xn--bcher-kva.de")
    assert name.unicode == "bücher.de" and str(name) == "xn--bcher-kva.de"


def test_punycode_input_is_kept_and_lower_cased() -> None:
    assert normalize_domain("xn--bcher-kva.de") == "xn--bcher-kva.de"
    assert normalize_domain("XN--BCHER-KVA.DE") == "xn--bcher-kva.de"


def test_idna_2008_keeps_sharp_s() -> None:
    # IDNA 2003 (and transitional UTS 46) would turn "ß" into "ss": a different domain.
    assert normalize_domain("straße.de") == "xn--strae-oqa.de"


def test_the_ideographic_full_stop_separates_labels() -> None:
    assert normalize_domain("bücher。de") == "xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("xn--abc.com", "bad punycode"),
        ("xn--.com", "bad punycode"),
        ("xn--bcher-kva-.de", "bad punycode"),
        ("a\u05d0.com", "not a valid international name"),  # Latin and Hebrew in one label
        ("\u0300a.com", "not a valid international name"),  # starts with a combining mark
        ("a\u200db.com", "not a valid international name"),  # a joiner out of context
        ("\U0001f642.com", "not a valid international name"),  # emoji
        ("\u2488.com", "not a valid international name"),  # "⒈": disallowed
        ("bü\udc80cher.de", "not a valid international name"),  # an undecodable byte
    ],
)
def test_invalid_international_names_say_why(text: str, reason: str) -> None:
    assert reason in reason_for(text)


def test_a_mixed_script_lookalike_is_valid_but_shows_its_punycode() -> None:
    # IDNA 2008 allows a Cyrillic "a" (U+0430) among Latin letters; display() gives it away.
    stored = normalize_domain("p\u0430ypal.com")
    assert stored.startswith("xn--") and stored != "paypal.com"
    assert display(stored) == f"p\u0430ypal.com ({stored})"


def test_a_name_that_does_not_decode_is_shown_as_it_is() -> None:
    assert to_unicode("xn--abc.com") == "xn--abc.com"
    assert display("xn--abc.com") == "xn--abc.com"


def test_domain_error_is_a_value_error_naming_the_text() -> None:
    error = DomainError("bad_name.com", "bad character '_'")
    assert isinstance(error, ValueError)
    assert str(error) == "'bad_name.com': bad character '_'"


# -- properties -------------------------------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_UNICODE_LETTERS = "äöüßéèñçøåłžя"
_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_TOP_LABEL = st.from_regex(r"[a-z][a-z0-9]{1,9}", fullmatch=True)
_UNICODE_LABEL = st.text(
    alphabet=_LETTERS + _UNICODE_LETTERS + "0123456789", min_size=1, max_size=15
)

ascii_names = st.builds(
    lambda labels, top: ".".join([*labels, top]),
    st.lists(_LABEL.filter(lambda label: "--" not in label), min_size=1, max_size=4),
    _TOP_LABEL,
)
unicode_names = st.builds(
    lambda labels, top: ".".join([*labels, top]),
    st.lists(_UNICODE_LABEL, min_size=1, max_size=3),
    _TOP_LABEL,
)
# Text near the shape of a domain reaches deeper than arbitrary text does.
domain_like_text = st.lists(
    st.sampled_from(
        [
            *_LETTERS[:6],
            "X",
            "0",
            "9",
            ".",
            "-",
            "*",
            "ü",
            "ß",
            "xn--",
            "。",
            "\uff21",
            "\u200d",
            "_",
        ]
    ),
    max_size=40,
).map("".join)


@given(st.one_of(st.text(), domain_like_text))
@example("\udc80")
@example("xn--")
@example("*.。")
def test_normalize_raises_nothing_but_domain_error(text: str) -> None:
    with contextlib.suppress(DomainError):
        normalize_domain(text)


@given(st.one_of(st.text(), domain_like_text, ascii_names, unicode_names))
def test_normalize_is_idempotent(text: str) -> None:
    try:
        once = normalize_domain(text)
    except DomainError:
        return
    assert normalize_domain(once) == once
    assert once.isascii() and once == once.lower()
    assert len(once) <= MAX_NAME_LENGTH


@given(ascii_names, st.booleans())
def test_valid_ascii_names_round_trip(name: str, wildcard: bool) -> None:
    text = f"*.{name}" if wildcard else name
    assert normalize_domain(text) == text
    assert to_unicode(text) == text
    assert normalize_domain(text.upper() + ".") == text


@given(unicode_names)
def test_valid_unicode_names_round_trip(name: str) -> None:
    stored = normalize_domain(name)
    assert to_unicode(stored) == name
    assert normalize_domain(to_unicode(stored)) == stored
