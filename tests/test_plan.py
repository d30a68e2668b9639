from __future__ import annotations

from closte_sync.daemon.plan import make_plan
from closte_sync.daemon.settings import GuardSettings

GUARD = GuardSettings(max_remove_share=0.25, min_held=4)


def test_adds_what_is_missing_and_removes_only_what_we_own() -> None:
    plan = make_plan(
        desired={"a.com", "b.com"},
        held={"b.com", "c.com", "theirs.com"},
        owned={"b.com", "c.com"},
        guard=GuardSettings(max_remove_share=1.0, min_held=0),
    )
    assert plan.add == ("a.com",)
    assert plan.remove == ("c.com",)
    assert plan.keep == ("b.com",)
    assert plan.refused_removals is None


def test_guard_refuses_a_large_share_of_removals_but_still_adds() -> None:
    held = {f"d{i}.com" for i in range(8)}
    plan = make_plan(desired={"new.com"}, held=held, owned=held, guard=GUARD)
    assert plan.add == ("new.com",)
    assert plan.remove == ()
    assert plan.refused_removals is not None
    assert "8 of 8" in plan.refused_removals


def test_guard_allows_a_small_share_and_can_be_forced() -> None:
    held = {f"d{i}.com" for i in range(8)}
    desired = held - {"d0.com", "d1.com"}
    assert make_plan(desired, held, held, GUARD).remove == ("d0.com", "d1.com")
    forced = make_plan(set(), held, held, GUARD, force=True)
    assert len(forced.remove) == 8
    assert forced.refused_removals is None


def test_guard_does_not_apply_below_min_held() -> None:
    held = {"a.com", "b.com"}
    plan = make_plan(set(), held, held, GUARD)
    assert plan.remove == ("a.com", "b.com")
