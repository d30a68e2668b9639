"""Messages the app sends its panes. Floods coalesce: a newer copy replaces an older one
still waiting in the queue (toolong's ``can_replace``)."""

from __future__ import annotations

from textual.message import Message


class NewEvents(Message):
    """Events arrived on the subscription; the log view fetches what it has not got."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, NewEvents)


class StatusUpdated(Message):
    """The daemon's status was read again (``app.status``)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusUpdated)


class RowsChanged(Message):
    """``app.rows`` changed: ``names`` are the domains that changed, None for all."""

    def __init__(self, names: frozenset[str] | None) -> None:
        super().__init__()
        self.names = names


class ConnectionChanged(Message):
    """The link to the daemon went up or down (``app.connection_state``)."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__()
        self.state = state
        self.detail = detail
