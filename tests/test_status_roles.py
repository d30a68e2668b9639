"""`closte-sync status` on a standby: healthy without passes of its own; says who leads."""

from __future__ import annotations

from closte_sync.daemon.commands.status import as_text, problems_of
from closte_sync.daemon.control.cli_support import role_text

STANDBY = {
    "now": 1000.0,
    "daemon": {
        "role": "standby",
        "leader": {"host": "web-2", "pid": 42, "since": 900.0},
        "last_good_pass_at": None,
        "interval": {"value": 300, "origin": "default"},
    },
    "domains": {},
}


def test_a_standby_is_healthy_without_passes_and_names_its_leader() -> None:
    assert problems_of(STANDBY, None) == []
    assert role_text(STANDBY["daemon"], 1000.0).startswith("standby (leader: web-2, since ")  # type: ignore[arg-type]
    assert "role:            standby (leader: web-2" in as_text(STANDBY, [])


def test_a_leader_without_a_good_pass_is_unhealthy() -> None:
    leader = {**STANDBY, "daemon": {**STANDBY["daemon"], "role": "leader"}}  # type: ignore[dict-item]
    assert problems_of(leader, None) == ["no pass has succeeded yet"]
    assert role_text(leader["daemon"], 1000.0) == "leader"  # type: ignore[index]
