"""Test-wide settings. Area fixtures live in their own modules (tests/*_fixtures.py and
closte_sync.sandbox.pytest_plugin); test modules name the ones they use."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI machines are shared and noisy: no deadlines, fewer examples, same properties.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
