"""What can go wrong with the store, as exceptions that name the file and the reason."""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked; the message names the file or the domain.

    ``transient`` is true for errors worth retrying (a lock, a full disk, an I/O error).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class StoreBusyError(StoreError):
    """Another connection held the write lock for longer than the busy timeout."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


class SchemaTooNewError(StoreError):
    """The file was written by a newer closte-sync; this one refuses to touch it."""


class NotAStoreError(StoreError):
    """The file exists but is not a closte-sync store (another SQLite file, or not SQLite)."""


class LedgerTransitionError(StoreError):
    """A ledger change that the domain's current state does not allow."""

    def __init__(self, domain: str, current: str | None, wanted: str, reason: str = "") -> None:
        where = f"in state {current!r}" if current is not None else "not in the ledger"
        why = f": {reason}" if reason else ""
        super().__init__(f"{domain}: cannot go to {wanted!r}, it is {where}{why}")
        self.domain = domain
        self.current = current
        self.wanted = wanted
