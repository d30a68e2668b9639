"""The settings screen: the check interval and tries limits (checked as typed, applied
live, with where the effective value comes from), and the actions: retry a domain,
resync now, test the Closte connection, release a held plan (showing what it removes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.validation import Integer
from textual.widgets import Button, Input, Static

from closte_sync.daemon.control.client import ControlError, DaemonUnavailable
from closte_sync.shared.protocol import SETTABLE, Op

if TYPE_CHECKING:
    from closte_sync.tui.app import ClosteSyncApp

FIELDS: tuple[tuple[str, str, str], ...] = (
    ("interval_s", "DNS check interval (seconds)", "interval"),
    ("dns_tries", "DNS tries before 'failed'", "tries"),
    ("ssl_tries", "SSL tries before 'ssl-failed'", "tries"),
)
ORIGINS = {
    "operator": "set live by an operator",
    "plugin": "the plugin's dns_check_interval setting",
    "config": "the config file",
    "default": "the default",
}


def effective(key: str, status: Mapping[str, Any]) -> str:
    daemon = status.get("daemon", {})
    if key == "interval_s":
        interval = daemon.get("interval", {})
        origin = ORIGINS.get(interval.get("origin", ""), interval.get("origin", "?"))
        return f"now {interval.get('value', '?')} s, from {origin}"
    return f"now {daemon.get('tries', {}).get(key, '?')}"


class SettingsPane(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "app.focus_next", "Next field", show=False),
        Binding("up", "app.focus_previous", "Previous field", show=False),
    ]

    @property
    def _app(self) -> ClosteSyncApp:
        return cast("ClosteSyncApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("", id="read-only-notice")
        yield Static("Settings", classes="section")
        for key, label, _ in FIELDS:
            low, high = SETTABLE[key]
            with Horizontal(classes="setting-row"):
                yield Static(label, classes="setting-label")
                yield Input(
                    placeholder=f"{low}..{high}",
                    type="integer",
                    validators=[Integer(minimum=low, maximum=high)],
                    id=f"set-{key}",
                    classes="setting-input",
                )
                yield Button("Apply", id=f"apply-{key}", classes="change")
                yield Static("", id=f"now-{key}", classes="setting-now")
            yield Static("", id=f"check-{key}", classes="setting-check")
        yield Static("Actions", classes="section")
        with Horizontal(classes="setting-row"):
            yield Input(placeholder="domain to check again", id="retry-domain")
            yield Button("Retry domain", id="retry", classes="change")
        with Horizontal(classes="setting-row"):
            yield Button("Resync now", id="resync", classes="change")
            yield Button("Test Closte connection", id="test-closte", classes="change")
        yield Static("", id="test-result")
        yield Static("Held removals", classes="section")
        yield Static("None: the guard holds nothing back.", id="held-plan")
        yield Button("Release held plan", id="release", classes="change", disabled=True)

    def show_access(self, may_change: bool, connected: bool, reason: str) -> None:
        notice = self.query_one("#read-only-notice", Static)
        if not connected:
            notice.update(Text("Not connected to the daemon: actions are unavailable.", "yellow"))
        elif not may_change:
            notice.update(Text(f"Read only: {reason}", "yellow"))
        else:
            notice.update("")
        for button in self.query(".change").results(Button):
            if button.id == "release":
                continue
            button.disabled = not (may_change and connected)
            button.tooltip = None if button.disabled is False else (reason or "not connected")
        self._update_release(may_change and connected)

    def show_status(self, status: Mapping[str, Any]) -> None:
        for key, _, _ in FIELDS:
            self.query_one(f"#now-{key}", Static).update(effective(key, status))
        held = status.get("daemon", {}).get("held_plan")
        self._held = held
        plan = self.query_one("#held-plan", Static)
        if held:
            text = Text()
            text.append(f"Plan {held['id']} removes exactly these aliases from Closte:\n", "bold")
            for domain in held.get("domains", []):
                text.append(f"  - {domain}\n")
            plan.update(text)
        else:
            plan.update("None: the guard holds nothing back.")
        self._update_release(self._app.may_change and self._app.connected)

    _held: Mapping[str, Any] | None = None

    def _update_release(self, allowed: bool) -> None:
        button = self.query_one("#release", Button)
        held = self._held
        button.label = f"Release plan {held['id']}" if held else "Release held plan"
        button.disabled = not (allowed and held)

    @on(Input.Changed, ".setting-input")
    def _validate(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("set-")
        check = self.query_one(f"#check-{key}", Static)
        if not event.value:
            check.update("")
        elif event.validation_result is not None and not event.validation_result.is_valid:
            low, high = SETTABLE[key]
            check.update(Text(f"must be a whole number from {low} to {high}", "red"))
        else:
            check.update(Text("ok, press Enter or Apply", "green"))

    @on(Input.Submitted, ".setting-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self._apply((event.input.id or "").removeprefix("set-"))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        name = event.button.id or ""
        if name.startswith("apply-"):
            self._apply(name.removeprefix("apply-"))
        elif name == "retry":
            domain = self.query_one("#retry-domain", Input).value.strip()
            if domain:
                self._app.action_retry_domain(domain)
        elif name == "resync":
            self._app.action_resync()
        elif name == "test-closte":
            self.test_closte()
        elif name == "release" and self._held:
            self._app.action_release(str(self._held["id"]))

    def _apply(self, key: str) -> None:
        field = self.query_one(f"#set-{key}", Input)
        result = field.validate(field.value)
        if not field.value or (result is not None and not result.is_valid):
            low, high = SETTABLE[key]
            self.app.notify(f"{key}: enter a whole number from {low} to {high}", severity="error")
            return
        self._app.action_set_value(key, int(field.value))
        field.value = ""

    @work(exclusive=True, group="test-closte", exit_on_error=False)
    async def test_closte(self) -> None:
        out = self.query_one("#test-result", Static)
        out.update("Testing the Closte connection…")
        try:
            result = await self._app.call(Op.TEST_CLOSTE)
        except (DaemonUnavailable, ControlError) as exc:
            out.update(Text(str(exc), "red"))
            return
        text = Text(result.get("message", ""), "green" if result.get("ok") else "red")
        hint = result.get("hint")
        if hint:
            text.append(f"\n{hint['title']}: {hint['action']}", "yellow")
        out.update(text)
