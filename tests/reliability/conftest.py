"""The reliability suite: crashes, API faults, failing sources, bad input, secrets, soak.

Heavy cases carry the ``heavy`` marker (registered in pyproject.toml); the test command and
CI run them too. Their sizes and lengths can be cut for a local run by environment
variables, each named where it is read (``CLOSTE_SYNC_CRASH_RUNS``, ``CLOSTE_SYNC_SOAK_S``,
``CLOSTE_SYNC_OUTAGE_S``). Figures a test measures (the soak's slopes) are printed in the
terminal summary, so every run reports them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

_FIGURES: list[str] = []


@pytest.fixture
def report_figure() -> Callable[[str], None]:
    """Call with one line of text to show in the run's summary."""
    return _FIGURES.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
