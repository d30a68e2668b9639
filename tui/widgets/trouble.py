"""The troubleshooting screen: every failing or stuck domain with the hints for its own
failure, and Closte's general guidance."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from closte_sync.shared.protocol import DomainRow

GUIDANCE: tuple[tuple[str, str], ...] = (
    (
        "The API key",
        "closte-sync reads CLOSTE_CLIENT_API_KEY from wp-config.php (Closte dashboard: Sites > "
        'Settings > WP-Config > "Additional wp-config.php content"). The file is read-only for '
        "the site, which is all closte-sync needs; the user it runs as must be able to read it. "
        "Use `closte-sync closte test` or the Settings screen to check the key.",
    ),
    (
        "SSL takes time",
        "Closte issues the certificate by itself after the domain is added and DNS points at "
        "the server; it usually takes 5-10 minutes. A domain in checking-ssl-cert is normal "
        "until then.",
    ),
    (
        "DNS must point at the Closte server",
        "Create an A record for the server's IP (or a CNAME to the network's main domain) at the "
        "domain's DNS provider; the DNS check passes once the answers match what is expected.",
    ),
    (
        "A domain already on another Closte application",
        "Closte refuses a domain another application holds. Remove it there in the Closte "
        "dashboard (or ask its owner), then retry it here.",
    ),
    (
        "While testing",
        "Lower the check interval on the Settings screen (10 seconds at least) so changes show "
        "quickly; set it back to 300 afterwards.",
    ),
)


def guidance_text() -> Text:
    text = Text()
    text.append("Closte guidance\n", "bold underline")
    for title, body in GUIDANCE:
        text.append(f"\n{title}\n", "bold")
        text.append(f"{body}\n")
    return text


def domain_help(row: DomainRow, now: float) -> Text:
    text = Text()
    text.append(f"{row.domain}\n", "bold")
    text.append(f"{row.trouble(now)} · {row.state} · {row.stage or 'no stage'}")
    if row.max_tries:
        text.append(f" · try {row.tries} of {row.max_tries}")
    text.append("\n")
    if row.last_error:
        text.append(f"Last error: {row.last_error}\n", "red")
    if row.last_summary:
        text.append(f"Last check: {row.last_summary}\n")
    if row.hint:
        text.append(f"\n{row.hint['title']}\n", "bold yellow")
        text.append(f"{row.hint['meaning']}\nWhat to do: {row.hint['action']}\n")
    elif row.stage == "checking-ssl-cert" or row.stage == "ssl-failed":
        text.append("\nWaiting for Closte's certificate\n", "bold yellow")
        text.append("Closte issues it 5-10 minutes after the domain is added and DNS is right.\n")
    else:
        text.append("\nNo specific hint; see the Closte guidance below and the domain's events.\n")
    return text


class TroublePane(Horizontal):
    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._rows: dict[str, DomainRow] = {}
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield OptionList(id="trouble-list")
        with VerticalScroll(id="trouble-help"):
            yield Static("", id="trouble-domain")
            yield Static(guidance_text(), id="guidance")

    def set_rows(self, rows: Iterable[DomainRow]) -> None:
        now = self._clock()
        troubled = sorted(
            (row for row in rows if row.trouble(now)),
            key=lambda r: (r.stage not in ("failed", "ssl-failed"), r.domain),
        )
        self._rows = {row.domain: row for row in troubled}
        options = self.query_one("#trouble-list", OptionList)
        keep = self.selected
        options.clear_options()
        options.add_options(
            [
                Option(Text.assemble((r.domain, "bold"), f"  {r.trouble(now)}"), id=r.domain)
                for r in troubled
            ]
        )
        if not troubled:
            self.selected = None
            self.query_one("#trouble-domain", Static).update(
                Text("No failing or stuck domains.\n", "green")
            )
            return
        names = list(self._rows)
        index = names.index(keep) if keep in self._rows else 0
        options.highlighted = index
        self._show(names[index])

    @on(OptionList.OptionHighlighted, "#trouble-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self._show(event.option.id)

    def _show(self, name: str) -> None:
        self.selected = name
        row = self._rows.get(name)
        if row is not None:
            self.query_one("#trouble-domain", Static).update(domain_help(row, self._clock()))
