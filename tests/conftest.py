"""Test-wide settings. Area fixtures live in their own modules (tests/*_fixtures.py and
closte_sync.sandbox.pytest_plugin); test modules name the ones they use."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Tests talk to loopback only. A proxy set in the environment (HTTP clients honour it)
# would send the sandbox's traffic off the machine, so none is used here.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

# CI machines are shared and noisy: no deadlines, fewer examples, same properties.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")
