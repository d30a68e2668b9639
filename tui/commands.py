"""The command palette's entries (ctrl+p): every action, found by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from closte_sync.tui.app import ClosteSyncApp


def palette_commands(app: ClosteSyncApp) -> Iterable[SystemCommand]:
    for tab, title in (
        ("domains", "Domains"),
        ("logs", "Logs"),
        ("trouble", "Troubleshooting"),
        ("settings", "Settings"),
    ):
        yield SystemCommand(
            f"Go to {title}", f"show the {title} screen", lambda t=tab: app.show_tab(t)
        )
    yield SystemCommand("Follow the log", "turn follow mode on or off", app.action_follow)
    if app.may_change and app.connected:
        yield SystemCommand("Resync now", "start a reconcile pass now", app.action_resync)
        yield SystemCommand(
            "Retry the selected domain", "check it again now, tries reset", app.action_retry
        )
        yield SystemCommand(
            "Test the Closte connection",
            "Closte's own test with the configured key",
            lambda: app.show_tab("settings", then="test_closte"),
        )
        yield SystemCommand(
            "Set the check interval…",
            "10..300 seconds",
            lambda: app.show_tab("settings", then="interval"),
        )
    yield SystemCommand(
        "Reconnect now", "try the daemon again without waiting", app.action_reconnect
    )
    yield SystemCommand("Help", "what every key does", app.action_help)
    yield SystemCommand("Quit", "leave the TUI", app.action_quit)
