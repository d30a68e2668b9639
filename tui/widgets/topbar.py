"""The bar at the top: connection badge, who you are, the stage counts, the last pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from closte_sync.shared.protocol import DomainRow

STAGE_ORDER = (
    "checking-dns",
    "checking-ssl-cert",
    "done",
    "done-without-ssl",
    "failed",
    "ssl-failed",
)
STAGE_STYLES = {"failed": "bold red", "ssl-failed": "bold red", "done": "green"}


class ConnectionBadge(Static):
    """CONNECTING / CONNECTED / DISCONNECTED, coloured by class."""

    def show(self, state: str, detail: str = "") -> None:
        self.set_classes(f"badge {state}")
        self.update(f" {state.upper()} {detail}".rstrip() + " ")


def stage_counts(rows: Iterable[DomainRow]) -> Text:
    counts = Counter(row.stage or "no stage" for row in rows if row.state != "removed")
    text = Text()
    for stage in (*STAGE_ORDER, "no stage"):
        if counts.get(stage) or stage in ("checking-dns", "checking-ssl-cert", "done", "failed"):
            if text:
                text.append(" · ", "dim")
            text.append(f"{stage} ", "dim")
            text.append(str(counts.get(stage, 0)), STAGE_STYLES.get(stage, "bold"))
    return text


class TopBar(Horizontal):
    def compose(self) -> ComposeResult:
        yield Static("closte-sync", id="title")
        yield ConnectionBadge(id="badge", classes="badge connecting")
        yield Static("", id="role")
        yield Static("", id="counts")
        yield Static("", id="last-pass")

    def show_connection(self, state: str, detail: str = "") -> None:
        self.query_one(ConnectionBadge).show(state, detail)

    def show_role(self, may_change: bool, connected: bool) -> None:
        role = self.query_one("#role", Static)
        role.update("" if may_change or not connected else " READ ONLY ")
        role.set_class(not may_change and connected, "read-only")

    def show_counts(self, rows: Iterable[DomainRow]) -> None:
        self.query_one("#counts", Static).update(stage_counts(rows))

    def show_last_pass(self, text: str) -> None:
        self.query_one("#last-pass", Static).update(text)
