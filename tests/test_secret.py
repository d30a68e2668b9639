from __future__ import annotations

import logging
import pickle

import pytest

from closte_sync.shared.secret import Secret, mask, scrub, scrub_url_keys

KEY = "k3yV4lue-0123456789abcdef0123456789"


def test_mask_shows_at_most_four_characters_and_the_length() -> None:
    assert mask(KEY) == f"k3yV… ({len(KEY)} chars)"
    assert mask("short") == "… (5 chars)"
    assert mask("") == "(empty)"


def test_secret_never_prints_its_value() -> None:
    secret = Secret(KEY)
    for text in (str(secret), repr(secret), f"{secret}", f"{secret!r}", "%s" % secret):
        assert KEY not in text
        assert "k3yV" in text
    assert secret.reveal() == KEY


def test_secret_in_a_log_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("closte_sync.test").debug("key is %s", Secret(KEY))
    assert KEY not in caplog.text
    assert "k3yV" in caplog.text


def test_secret_refuses_pickling() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


def test_scrub_replaces_every_occurrence() -> None:
    text = f"url=https://x/getdomains?apikey={KEY}&again={KEY}"
    cleaned = scrub(text, Secret(KEY), None, "")
    assert KEY not in cleaned
    assert cleaned.count("k3yV…") == 2


def test_secrets_compare_by_value() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert not Secret("")


def test_scrub_masks_the_url_encoded_spellings_too() -> None:
    key = "k3y+with/slash=and&MORESECRET"
    text = (
        "GET /getdomains?apikey=k3y%2Bwith%2Fslash%3Dand%26MORESECRET failed; "
        "also k3y%2Bwith/slash%3Dand%26MORESECRET and k3y%2Bwith%2Fslash%3Dand%26MORESECRET"
    )
    cleaned = scrub(text, Secret(key))
    assert "MORESECRET" not in cleaned
    assert cleaned.count(f"k3y+… ({len(key)} chars)") == 3


def test_scrub_url_keys_masks_any_spelling_after_apikey() -> None:
    text = "timeout to url='http://h/getdomains?apikey=Ab12!x/y%2Bz%3Dw~q&x=1' (k@y:p?ss)"
    cleaned = scrub_url_keys(text)
    assert "Ab12" not in cleaned
    assert "apikey=(masked)&x=1" in cleaned
