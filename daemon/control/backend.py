"""The seam between the control server and the daemon: what the daemon plugs in.

The server builds domain rows and event pages from the store itself; everything that needs
the running daemon (its live state, and every change) goes through ``DaemonActions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class DaemonActions(Protocol):
    """Implemented by the daemon. Messages are shown to the operator as they are."""

    def live_status(self) -> Mapping[str, Any]:
        """The daemon's live state, JSON-ready; the keys the CLI and the TUI read:

        - ``version`` (str), ``pid`` (int)
        - ``pass_running`` (bool), ``last_pass_at`` and ``last_good_pass_at`` (epoch s or None)
        - ``held_plan``: ``{"id": str, "domains": [str, ...]}`` (the removals the guard
          holds back) or None
        - ``sources``: ``{name: {"healthy": bool, "problems": [str, ...]}}``
        - ``interval``: ``{"value": int, "origin": "operator"|"plugin"|"config"|"default"}``
        - ``tries``: ``{"dns_tries": int, "ssl_tries": int}``
        """
        ...

    async def retry(self, domain: str) -> str:
        """Check ``domain`` again now (tries reset); a message for the operator."""
        ...

    async def resync(self) -> str:
        """Start a reconcile pass now."""
        ...

    async def release(self, plan_id: str) -> str:
        """Carry out the held plan; ValueError with the reason when the id is not the
        held plan's."""
        ...

    async def set_value(self, key: str, value: int, by: str) -> str:
        """Set ``interval_s`` (10..300), ``dns_tries`` or ``ssl_tries`` live; ValueError on
        a bad value. ``by`` names who asked (user and uid)."""
        ...

    async def test_closte(self) -> Mapping[str, Any]:
        """Closte's connection test: ``{"ok": bool, "kind": str, "message": str,
        "hint": {id, title, meaning, action} | None}``."""
        ...
