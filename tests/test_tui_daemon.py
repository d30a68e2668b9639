"""The TUI against a real daemon (a subprocess) with the sandbox behind it: navigate, filter,
retry, change the interval and see the next check move, and the daemon stopped and
restarted under a running TUI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from daemon_harness import DaemonProcess, lay_out
from test_tui_app import Messages, table, text_of
from textual.widgets import DataTable, Input

from closte_sync.sandbox.runner import Sandbox
from closte_sync.tui.app import ClosteSyncApp
from closte_sync.tui.link import Backoff
from closte_sync.tui.messages import ConnectionChanged

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

SIZE = (150, 44)


def cell(rows: DataTable[object], domain: str, column: int) -> str:
    value = rows.get_row(domain)[column]
    return str(getattr(value, "plain", value))


async def _rows_settle(app: ClosteSyncApp, messages: Messages, check: object) -> None:
    """Wait until ``check()`` holds, re-testing after each message the app handles."""
    await messages.wait(lambda _m: bool(check()))  # type: ignore[operator]


async def test_the_tui_on_a_live_daemon(closte_sandbox: Sandbox, tmp_path: Path) -> None:
    site = lay_out(
        closte_sandbox,
        tmp_path,
        file_lines=["live.example.test", "later.example.test", "taken.example.test"],
    )
    site.point_at_network("live.example.test", "taken.example.test")  # later: no DNS yet
    other = "other-application-key"
    closte_sandbox.state.api_keys.add(other)
    closte_sandbox.state.add_alias(other, "taken.example.test", wildcard=False)
    socket_path = tmp_path / "run" / "control.sock"
    daemon = await DaemonProcess.start(site, CLOSTE_SYNC_CHECKS_INTERVAL_S="300")
    try:
        await daemon.wait_for("domain-live.example.test", "Marking domain as done")
        await daemon.wait_for("Closte refused to add taken.example.test")
        app = ClosteSyncApp(socket_path, backoff=Backoff(0.05, 0.3), blink=False)
        messages = Messages()
        async with app.run_test(size=SIZE, message_hook=messages.hook) as pilot:
            await asyncio.wait_for(app.ready.wait(), 15)
            rows = table(app)
            await _rows_settle(app, messages, lambda: rows.row_count == 3)
            assert cell(rows, "live.example.test", 3) == "done"
            assert cell(rows, "taken.example.test", 2) == "refused"

            # Filter as an operator does.
            await pilot.press("slash", *"^la", "enter")
            assert [str(k.value) for k in rows.rows] == ["later.example.test"]
            await pilot.press("escape")
            await _rows_settle(app, messages, lambda: rows.row_count == 3)

            # later.example.test waits 300 s for its next DNS check; the operator lowers
            # the interval to 10 s and sees the next check move up.
            await pilot.press("4")
            field = app.main.query_one("#set-interval_s", Input)
            field.focus()
            field.value = ""
            await pilot.press(*"10", "enter")
            await daemon.wait_for("check interval set to 10 s")
            await pilot.press("1")

            def next_check_soon() -> bool:
                shown = cell(rows, "later.example.test", 6)
                return (shown.startswith("in ") and shown.endswith(" s")) or shown in ("now", "due")

            await _rows_settle(app, messages, next_check_soon)

            # The other application lets the name go; retry it from the keyboard.
            closte_sandbox.state.remove_alias(other, "taken.example.test")
            rows.focus()
            rows.move_cursor(row=rows.get_row_index("taken.example.test"))
            mark = len(daemon.lines)
            await pilot.press("r")
            await daemon.wait_for("add taken.example.test: done", start=mark)
            await _rows_settle(app, messages, lambda: cell(rows, "taken.example.test", 2) == "held")

            # The daemon stops under the running TUI, and comes back.
            messages.clear()
            assert await daemon.stop() == 0
            await messages.wait(
                lambda m: isinstance(m, ConnectionChanged) and m.state == "disconnected"
            )
            # The badge may already say CONNECTING (the TUI retries): either way not CONNECTED.
            assert not text_of(app, "#badge").strip().startswith("CONNECTED")
            daemon = await DaemonProcess.start(site, CLOSTE_SYNC_CHECKS_INTERVAL_S="300")
            await messages.wait(
                lambda m: isinstance(m, ConnectionChanged) and m.state == "connected", timeout=30
            )
            assert "CONNECTED" in text_of(app, "#badge")
            await _rows_settle(app, messages, lambda: rows.row_count == 3)
    finally:
        await daemon.kill()
