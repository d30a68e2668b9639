"""The domains screen: every domain in a table (updated in place), a filter, sorting by
any column, and the selected domain's detail below."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from closte_sync.daemon.control.cli_support import age, clock
from closte_sync.daemon.control.client import ControlError, DaemonUnavailable
from closte_sync.shared.protocol import DomainRow, Op
from closte_sync.tui.widgets.topbar import STAGE_STYLES

COLUMNS: tuple[tuple[str, str], ...] = (
    ("domain", "Domain"),
    ("origin", "Source"),
    ("state", "State"),
    ("stage", "Stage"),
    ("tries", "Tries"),
    ("last", "Last check"),
    ("next", "Next check"),
    ("cert", "Cert expires"),
    ("error", "Last error / summary"),
)


def cells(row: DomainRow, now: float) -> dict[str, Text | str]:
    tries = f"{row.tries}/{row.max_tries}" if row.max_tries else str(row.tries)
    stage = Text(row.stage or "-", STAGE_STYLES.get(row.stage or "", ""))
    note = Text(row.last_error, "red") if row.last_error else Text(row.last_summary, "dim")
    note.truncate(60)
    return {
        "domain": row.domain,
        "origin": row.origin,
        "state": row.state,
        "stage": stage,
        "tries": tries,
        "last": age(row.last_check_at, now),
        "next": age(row.next_check_at, now),
        "cert": clock(row.cert_expires_at)[:10] if row.cert_expires_at else "-",
        "error": note,
    }


def cell_width(value: Text | str) -> int:
    """How many columns a cell takes in the table: its longest line, a string being
    read as markup (as DataTable reads it)."""
    if isinstance(value, str):
        if "[" not in value and "\n" not in value:
            return cell_len(value)
        value = Text.from_markup(value)
    return max((cell_len(line) for line in value.plain.splitlines()), default=0)


def column_widths(rows: Iterable[Iterable[Text | str]]) -> dict[str, int]:
    """Each column as wide as its header or its widest cell (rows in COLUMNS' order)."""
    widths = [cell_width(label) for _, label in COLUMNS]
    for row in rows:
        widths = [max(width, cell_width(value)) for width, value in zip(widths, row, strict=True)]
    return {key: width for (key, _), width in zip(COLUMNS, widths, strict=True)}


def matches(row: DomainRow, pattern: re.Pattern[str] | None) -> bool:
    if pattern is None:
        return True
    fields = (
        row.domain,
        row.origin,
        row.state,
        row.stage or "",
        row.last_error or "",
        row.last_summary,
    )
    return any(pattern.search(value) for value in fields)


def compile_filter(text: str) -> re.Pattern[str] | None:
    """A regular expression when it is one, else the plain text; case-insensitive."""
    if not text:
        return None
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


def sort_key(column: str) -> Callable[[DomainRow], Any]:
    keys: dict[str, Callable[[DomainRow], Any]] = {
        "domain": lambda r: r.domain,
        "origin": lambda r: r.origin,
        "state": lambda r: r.state,
        "stage": lambda r: r.stage or "",
        "tries": lambda r: r.tries,
        "last": lambda r: r.last_check_at or 0.0,
        "next": lambda r: r.next_check_at or float("inf"),
        "cert": lambda r: r.cert_expires_at or float("inf"),
        "error": lambda r: r.last_error or r.last_summary,
    }
    return keys[column]


class DomainDetail(VerticalScroll):
    """The selected domain: its DNS answers against what is expected, its certificate,
    its hints and its newest events."""

    def compose(self) -> ComposeResult:
        yield Static(
            "Select a domain to see its checks, certificate, hints and events.", id="detail-body"
        )

    def show(self, detail: dict[str, Any] | None, now: float) -> None:
        self.query_one("#detail-body", Static).update(render_detail(detail, now))


def render_detail(detail: dict[str, Any] | None, now: float) -> Text:
    if detail is None:
        return Text("Select a domain to see its checks, certificate, hints and events.")
    row = DomainRow.from_json(detail["row"])
    text = Text()
    text.append(f"{row.domain}", "bold")
    text.append(f"  {row.state} · {row.stage or 'no stage'} · from {row.origin}")
    if row.place:
        text.append(f" ({row.place})", "dim")
    text.append("\n")
    if row.last_error:
        text.append(f"Last error: {row.last_error}\n", "red")
    dns = detail.get("dns")
    text.append("\nDNS  ", "bold")
    if dns:
        details = dns.get("details", {})
        text.append("ok" if dns["ok"] else "not yet", "green" if dns["ok"] else "yellow")
        text.append(f"  checked {age(dns['time'], now)}: {dns['summary']}\n")
        answers = details.get("answers")
        expected = details.get("expected")
        if answers is not None or expected is not None:
            text.append(f"  answers:  {', '.join(map(str, answers or [])) or '(none)'}\n")
            text.append(f"  expected: {', '.join(map(str, expected or [])) or '(none)'}\n")
    else:
        text.append("not checked yet\n", "dim")
    cert = detail.get("certificate")
    text.append("Certificate  ", "bold")
    if cert:
        details = cert.get("details", {})
        text.append("valid" if cert["ok"] else "not valid", "green" if cert["ok"] else "yellow")
        text.append(f"  checked {age(cert['time'], now)}: {cert['summary']}\n")
        if row.cert_expires_at:
            text.append(
                f"  expires {clock(row.cert_expires_at)} ({age(row.cert_expires_at, now)})\n"
            )
        for key in ("issuer", "sans"):
            if key in details:
                value = details[key]
                shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                text.append(f"  {key}: {shown}\n")
    else:
        text.append("not checked yet (Closte issues it 5-10 minutes after DNS is right)\n", "dim")
    for hint in detail.get("hints", []):
        text.append(f"\nHint: {hint['title']}\n", "bold yellow")
        text.append(f"  {hint['meaning']}\n  What to do: {hint['action']}\n")
    events = detail.get("events", [])
    if events:
        text.append("\nEvents\n", "bold")
        for event in events[:20]:
            text.append(
                f"  {clock(event['time'])} {event['level'].upper():<7} {event['message']}\n"
            )
    return text


class DomainsPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "clear_filter", "Clear filter"),
        ("s", "sort_next", "Sort"),
        ("S", "sort_reverse", "Reverse sort"),
    ]

    def __init__(self, *, clock: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._rows: dict[str, DomainRow] = {}
        self._pattern: re.Pattern[str] | None = None
        self._sort = "domain"
        self._reverse = False
        self.selected: str | None = None
        self._widths: dict[str, int] = {}  # what the table's columns are sized to
        self.detail_shown = asyncio.Event()  # set each time a detail is on screen

    def compose(self) -> ComposeResult:
        with Horizontal(classes="filter-bar"):
            yield Static("Filter /", classes="label")
            yield Input(placeholder="domain, stage, state or error (regex)", id="domain-filter")
        table: DataTable[Any] = DataTable(id="domains-table", cursor_type="row", zebra_stripes=True)
        self._add_columns(table, column_widths([]))
        yield table
        yield DomainDetail(id="domain-detail")

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#domains-table", DataTable)

    def focus_filter(self) -> None:
        self.query_one("#domain-filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#domain-filter", Input).value = ""
        self.table.focus()

    @on(Input.Changed, "#domain-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._pattern = compile_filter(event.value)
        self._rebuild()

    @on(Input.Submitted, "#domain-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    @on(DataTable.HeaderSelected)
    def _sort_by(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        self._reverse = not self._reverse if column == self._sort else False
        self._sort = column
        self._rebuild()

    def action_sort_next(self) -> None:
        keys = [key for key, _ in COLUMNS]
        self._sort = keys[(keys.index(self._sort) + 1) % len(keys)]
        self._reverse = False
        self._rebuild()
        self.app.notify(f"sorted by {dict(COLUMNS)[self._sort].lower()}", timeout=2)

    def action_sort_reverse(self) -> None:
        self._reverse = not self._reverse
        self._rebuild()

    @property
    def sort_column(self) -> tuple[str, bool]:
        return self._sort, self._reverse

    def set_rows(self, rows: Iterable[DomainRow]) -> None:
        self._rows = {row.domain: row for row in rows}
        self._rebuild()

    def visible_rows(self) -> list[DomainRow]:
        shown = [
            r for r in self._rows.values() if r.state != "removed" and matches(r, self._pattern)
        ]
        return sorted(shown, key=sort_key(self._sort), reverse=self._reverse)

    def _add_columns(self, table: DataTable[Any], widths: dict[str, int]) -> None:
        for key, label in COLUMNS:
            table.add_column(label, key=key, width=widths[key])
        self._widths = widths

    def _rebuild(self) -> None:
        """Fill the table anew, its columns sized to the rows before any row is added.

        DataTable would size columns of no set width itself, but only once it is next
        idle: the screen may paint the new rows before then at the old widths (after the
        first load, the headers' alone), and the table keeps the cells it painted until
        they change, so those cut cells would stay after the columns had grown."""
        table = self.table
        now = self._clock()
        keep = self.selected
        shown: list[tuple[str, list[Text | str]]] = []
        for row in self.visible_rows():
            values = cells(row, now)
            shown.append((row.domain, [values[key] for key, _ in COLUMNS]))
        with self.app.batch_update():
            table.clear(columns=True)
            self._add_columns(table, column_widths(ordered for _, ordered in shown))
            for name, ordered in shown:
                table.add_row(*ordered, key=name)
        if keep is not None:
            with contextlib.suppress(RowDoesNotExist):
                table.move_cursor(row=table.get_row_index(keep), animate=False)

    def update_rows(self, changed: Mapping[str, DomainRow | None]) -> None:
        """Domains changed (None: gone): their cells are updated in place where they can
        be; new rows, rows the filter now hides and cells wider than their column fill the
        table anew, once for the whole lot."""
        refill = False
        with self.app.batch_update():
            for name, row in changed.items():
                refill = self._update_in_place(name, row) or refill
            if refill:
                self._rebuild()
        shown = changed.get(self.selected) if self.selected is not None else None
        if shown is not None and shown.state != "removed":
            self.load_detail(shown.domain)

    def _update_in_place(self, name: str, row: DomainRow | None) -> bool:
        """Apply one change to the table where it stands; True when it needs a fill."""
        table = self.table
        if row is None or row.state == "removed":
            self._rows.pop(name, None)
            with contextlib.suppress(RowDoesNotExist):
                table.remove_row(name)
            return False
        is_new = name not in self._rows
        self._rows[name] = row
        if is_new or not matches(row, self._pattern):
            return True
        values = cells(row, self._clock())
        try:
            for key, _ in COLUMNS:
                table.update_cell(name, key, values[key])
        except (CellDoesNotExist, RowDoesNotExist):
            return True
        # Only this row is measured, so a round of thousands of updates stays cheap:
        # columns grow at once and shrink at the next fill (a filter, a sort, a new list).
        needed = column_widths([[values[key] for key, _ in COLUMNS]])
        return any(width > self._widths.get(key, 0) for key, width in needed.items())

    @on(DataTable.RowHighlighted, "#domains-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self.load_detail(self.selected)

    @work(exclusive=True, group="domain-detail", exit_on_error=False)
    async def load_detail(self, name: str) -> None:
        try:
            detail = await self.app.call(Op.DOMAIN, domain=name)  # type: ignore[attr-defined]
        except (DaemonUnavailable, ControlError):
            detail = None
        if name == self.selected:
            self.query_one(DomainDetail).show(detail, self._clock())
            self.detail_shown.set()
