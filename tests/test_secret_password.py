"""A password shows only its length: the Secret's mask, scrubbed texts, doctor's report."""

from __future__ import annotations

from pathlib import Path

from db_fixtures import MYSQL_HOST, MYSQL_PORT

from closte_sync.daemon.doctor import (
    DoctorContext,
    Status,
    check_configuration,
    check_database,
    run_checks,
)
from closte_sync.shared.secret import Secret, mask_password, scrub

PASSWORD = "Zq7-doctor-wrong-pass"


def test_a_password_mask_is_its_length_only() -> None:
    assert mask_password(PASSWORD) == f"({len(PASSWORD)} chars)"
    assert mask_password("") == "(empty)"
    secret = Secret(PASSWORD, kind="password")
    for text in (str(secret), repr(secret), f"{secret}", secret.masked):
        assert f"({len(PASSWORD)} chars)" in text
        assert "Zq7" not in text and "Z" not in text
    assert secret.reveal() == PASSWORD
    assert Secret("ck_live_0123456789").masked.startswith("ck_l")  # a key keeps its hint


def test_scrub_masks_a_password_by_its_length() -> None:
    text = f"Access denied for 'app' (password {PASSWORD}); url mysql://app:{PASSWORD}@h/db"
    cleaned = scrub(text, Secret(PASSWORD, kind="password"))
    assert "Zq7" not in cleaned and "wrong-pass" not in cleaned
    assert cleaned.count(f"({len(PASSWORD)} chars)") == 2


async def test_doctor_shows_the_database_password_as_its_length(tmp_path: Path) -> None:
    # A wrong password for root on the test MariaDB: the login is refused.
    env = {
        "CLOSTE_SYNC_DATABASE_URL": f"mysql://root:{PASSWORD}@{MYSQL_HOST}:{MYSQL_PORT}/mysql",
        "CLOSTE_SYNC_CLOSTE_API_KEY": "ck_live_unused_0123456789abcdef",
        "CLOSTE_SYNC_STORE_PATH": str(tmp_path / "store.sqlite3"),
    }
    context = DoctorContext(
        config_path=None, env=env, cwd=tmp_path, default_config_path=tmp_path / "absent.toml"
    )
    _, database = await run_checks(context, (check_configuration, check_database))
    assert database.status is Status.FAIL
    assert f"(password ({len(PASSWORD)} chars))" in database.detail, database.detail
    everything = f"{database.detail}\n{database.fix}"
    assert PASSWORD not in everything and "Zq7" not in everything
