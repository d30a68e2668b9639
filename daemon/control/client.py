"""``ControlClient``: the CLI's and the TUI's side of the control socket.

    async with await ControlClient.connect(path) as client:
        status = await client.call(Op.STATUS)

Connecting reads the server's ``hello`` (role, what this user may change); ``call`` sends a
request and waits for its answer; pushes (subscriptions) go to ``on_push``. When the daemon
is not there the error says why in words an operator can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from closte_sync.shared.protocol import (
    MAX_ANSWER_BYTES,
    ErrorCode,
    LineSplitter,
    Op,
    ProtocolError,
    Push,
    PushMessage,
    Reply,
    Request,
    decode_message,
    encode,
)

CONNECT_TIMEOUT_S = 5.0


class DaemonUnavailable(Exception):
    """The daemon cannot be reached (not running, stale socket, no permission, gone)."""


class ControlError(Exception):
    """The daemon answered a request with an error."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


def unavailable_reason(path: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return (
            f"the closte-sync daemon is not running: there is no socket at {path} "
            "(start it with `systemctl start closte-sync` or `closte-sync daemon`)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"the closte-sync daemon is not running: nothing listens on {path} "
            "(the socket was left by a daemon that stopped)"
        )
    if isinstance(exc, PermissionError):
        return (
            f"permission denied on {path}: ask the administrator to add you to the "
            "socket's group ([socket] group or admin_group)"
        )
    return f"cannot connect to {path}: {exc.strerror or exc}"


class ControlClient:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_push: Callable[[PushMessage], None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.on_push = on_push
        self._ids = itertools.count(1)
        self._waiting: dict[int | str, asyncio.Future[Any]] = {}
        self._hello: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self.hello: Mapping[str, Any] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._task = asyncio.create_task(self._read_loop(), name="control client reader")

    @classmethod
    async def connect(
        cls,
        path: Path,
        *,
        on_push: Callable[[PushMessage], None] | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
        sock: socket.socket | None = None,
    ) -> ControlClient:
        """Connect and read the hello; DaemonUnavailable or ControlError (refused) if not.

        ``sock``: a socket already connected to ``path`` (handed over by another process,
        say), used instead of connecting."""
        try:
            opening = (
                asyncio.open_unix_connection(sock=sock, limit=MAX_ANSWER_BYTES)
                if sock is not None
                else asyncio.open_unix_connection(str(path), limit=MAX_ANSWER_BYTES)
            )
            reader, writer = await asyncio.wait_for(opening, timeout)
        except OSError as exc:
            raise DaemonUnavailable(unavailable_reason(path, exc)) from None
        except TimeoutError:
            raise DaemonUnavailable(f"{path}: the daemon did not accept in {timeout:g} s") from None
        client = cls(reader, writer, on_push)
        try:
            client.hello = await asyncio.wait_for(asyncio.shield(client._hello), timeout)
        except TimeoutError:
            await client.aclose()
            raise DaemonUnavailable(f"{path}: the daemon did not greet in {timeout:g} s") from None
        except BaseException:
            await client.aclose()
            raise
        return client

    @property
    def may_change(self) -> bool:
        return bool(self.hello.get("may_change"))

    @property
    def role_reason(self) -> str:
        return str(self.hello.get("reason", ""))

    async def call(self, op: Op, **args: Any) -> Any:
        """Send one request and return its result; ControlError when the daemon says no,
        DaemonUnavailable when the connection is gone."""
        if self.closed.is_set():
            raise DaemonUnavailable(self.close_reason or "the connection to the daemon is closed")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            self._writer.write(encode(Request(request_id, op, args)))
            await self._writer.drain()
            return await future
        except (ConnectionError, OSError) as exc:
            raise DaemonUnavailable(f"the connection to the daemon broke: {exc}") from None
        finally:
            self._waiting.pop(request_id, None)

    async def _read_loop(self) -> None:
        splitter = LineSplitter(MAX_ANSWER_BYTES)
        reason = "the daemon closed the connection"
        try:
            while True:
                data = await self._reader.read(1 << 16)
                if not data:
                    break
                for line in splitter.feed(data):
                    if line is None:
                        reason = "the daemon sent an answer larger than this client accepts"
                        return
                    if line.strip():
                        reason = self._take(line) or reason
        except (ConnectionError, OSError) as exc:
            reason = f"the connection to the daemon broke: {exc}"
        finally:
            self._finish(reason)

    def _take(self, line: bytes) -> str | None:
        try:
            message = decode_message(line)
        except ProtocolError as exc:
            return f"the daemon sent something unreadable: {exc.message}"
        if isinstance(message, PushMessage):
            if message.push == Push.HELLO and not self._hello.done():
                self._hello.set_result(message.data)
            elif message.push == Push.DROPPED:
                return f"the daemon dropped this connection: {message.data.get('reason', '')}"
            elif self.on_push is not None:
                self.on_push(message)
            return None
        return self._answer(message)

    def _answer(self, reply: Reply) -> str | None:
        error = None if reply.ok else ControlError(reply.code or "internal", reply.message)
        if reply.id is None:
            # Not tied to a request: a refusal on connect, or an answer to a broken line.
            if error is not None and not self._hello.done():
                self._hello.set_exception(error)
                return reply.message
            return None
        future = self._waiting.get(reply.id)
        if future is None or future.done():
            return None
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(reply.result)
        return None

    def _finish(self, reason: str) -> None:
        self.close_reason = reason
        gone = DaemonUnavailable(reason)
        if not self._hello.done():
            self._hello.set_exception(gone)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(gone)
        self.closed.set()

    async def aclose(self) -> None:
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        # Mark the hello future retrieved, so an unread refusal does not warn at exit.
        if self._hello.done() and not self._hello.cancelled():
            self._hello.exception()

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
