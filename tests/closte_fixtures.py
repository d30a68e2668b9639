"""Fixtures for the Closte client, the sandbox API and `closte-sync closte`.

Everything runs over real sockets: the sandbox API listens on 127.0.0.1, the client talks
HTTP to it. Test modules import the fixtures they use by name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from closte_sync.daemon.settings import ClosteSettings
from closte_sync.sandbox.api import SandboxApi
from closte_sync.sandbox.faults import Faults
from closte_sync.sandbox.state import SandboxState
from closte_sync.shared.secret import Secret

# Long and distinctive, so a leak anywhere is found by a plain substring search.
API_KEY = "ck_live_7f3a9b2c4d5e6f708192a3b4c5d6e7f8"
OTHER_KEY = "ck_live_0000111122223333444455556666777788"


@pytest.fixture
async def sandbox_api() -> AsyncIterator[SandboxApi]:
    api = SandboxApi(SandboxState(api_keys={API_KEY, OTHER_KEY}), Faults(seed=1))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def fast_settings(api: SandboxApi, **changes: Any) -> ClosteSettings:
    """Settings for tests: quick timeouts and backoff, limits that do not bind."""
    base = ClosteSettings(
        api_key=Secret(API_KEY),
        base_url=api.url,
        concurrency=4,
        rate_per_second=10_000.0,
        timeout_s=2.0,
        connect_timeout_s=2.0,
        retry_budget=3,
        retry_base_s=0.001,
        retry_max_s=0.01,
    )
    return replace(base, **changes)


class RecordingSleep:
    """A sleep that records what it was asked to wait and yields at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end frees its slot before a start)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    # Sorting (time, delta) puts an end (-1) before a start (+1) at the same instant.
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


def max_in_window(times: list[float], window: float) -> int:
    """The most events that fall within any span of ``window`` seconds."""
    ordered = sorted(times)
    best = 0
    first = 0
    for last, at in enumerate(ordered):
        while at - ordered[first] > window:
            first += 1
        best = max(best, last - first + 1)
    return best


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail with a clear message past the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
