"""Keeps the TUI connected to the daemon: connect, subscribe, and when the daemon goes
away, retry with exponential backoff (doubling up to a cap) until it is back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from closte_sync.daemon.control.client import ControlClient, ControlError, DaemonUnavailable
from closte_sync.shared.protocol import Op, PushMessage


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 120.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_s, self.first_s * 2 ** max(0, attempt - 1)))


class DaemonLink:
    """One connection at a time; the callbacks run on the app's event loop."""

    def __init__(
        self,
        path: Path,
        *,
        on_push: Callable[[PushMessage], None],
        on_state: Callable[[str, str, ControlClient | None], None],
        backoff: Backoff,
        open_socket: Callable[[], Awaitable[socket.socket]] | None = None,
    ) -> None:
        self.path = path
        self._open_socket = open_socket
        self._on_push = on_push
        self._on_state = on_state
        self._backoff = backoff
        self._retry_now = asyncio.Event()
        self.attempt = 0
        self.next_retry_s = 0.0
        self.client: ControlClient | None = None

    def retry_now(self) -> None:
        self._retry_now.set()

    async def run(self) -> None:
        """Runs until cancelled."""
        while True:
            self._on_state("connecting", str(self.path), None)
            client: ControlClient | None = None
            try:
                sock = await self._open_socket() if self._open_socket else None
                client = await ControlClient.connect(self.path, on_push=self._on_push, sock=sock)
                await client.call(Op.SUBSCRIBE, topics=["events", "domains"])
            except (DaemonUnavailable, ControlError, OSError) as exc:
                if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
                    exc = DaemonUnavailable(f"{self.path}: {exc}")
                if client is not None:
                    await client.aclose()
                self.attempt += 1
                self.next_retry_s = self._backoff.delay(self.attempt)
                reason = exc.message if isinstance(exc, ControlError) else str(exc)
                self._on_state("disconnected", reason, None)
                self._retry_now.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry_now.wait(), self.next_retry_s)
                continue
            self.attempt = 0
            self.client = client
            try:
                self._on_state("connected", str(self.path), client)
                await client.closed.wait()
                reason = client.close_reason
            finally:
                self.client = None
                await client.aclose()
            self.attempt = 1
            self.next_retry_s = self._backoff.delay(1)
            self._on_state("disconnected", reason, None)
            self._retry_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry_now.wait(), self.next_retry_s)
