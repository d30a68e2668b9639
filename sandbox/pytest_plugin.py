"""A pytest fixture giving a running sandbox in-process.

Enable it in a test module with ``pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]``::

    async def test_adds(closte_sandbox: Sandbox) -> None:
        closte_sandbox.dns.set_a("a.example.com", [closte_sandbox.network_ip])
        ...

Certificates are valid as soon as an alias is added (``cert_delay_s=0``). To see the waiting
state, override ``closte_sandbox_options`` in the test module, e.g. return
``{"cert_delay_s": 300}``, and move time with ``closte_sandbox.clock.advance(300)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from closte_sync.sandbox.runner import Sandbox


@pytest.fixture
def closte_sandbox_options() -> dict[str, Any]:
    """Keyword arguments for ``Sandbox.running``, over the fixture's defaults."""
    return {}


@pytest_asyncio.fixture
async def closte_sandbox(closte_sandbox_options: dict[str, Any]) -> AsyncIterator[Sandbox]:
    options: dict[str, Any] = {"cert_delay_s": 0.0, **closte_sandbox_options}
    async with Sandbox.running(**options) as sandbox:
        yield sandbox
