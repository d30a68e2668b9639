"""`?`: what every key does."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str], ...] = (
    ("tab / shift+tab", "next / previous screen (Domains, Logs, Troubleshooting, Settings)"),
    ("1 2 3 4", "go to a screen"),
    ("/", "filter the domains or the log (a regular expression on Domains)"),
    ("esc", "clear the filter"),
    ("f", "follow the log (scrolling up pauses it)"),
    ("r", "retry the selected domain (needs change rights)"),
    ("ctrl+p", "command palette: resync, test Closte, set the interval, ..."),
    ("?", "this help"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys\n\n", "bold")
        for key, meaning in KEYS:
            text.append(f"{key:>16}  ", "bold cyan")
            text.append(f"{meaning}\n")
        text.append("\nPress esc to close.", "dim")
        with Vertical(id="help-box"):
            yield Static(text)
