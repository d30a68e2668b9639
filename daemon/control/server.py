"""``ControlServer``: the daemon's Unix socket, speaking ``closte_sync.shared.protocol``.

The socket appears at ``[socket] path`` already at mode 0660 and owned by ``[socket] group``
(it is bound under a temporary name, set up, then renamed into place), so there is no moment
when anyone else could connect. Each connection learns its role from the peer's credentials
in a ``hello`` push; every request is answered; a connection that stops reading, or falls
more than ``max_pending_pushes`` behind, is sent a ``dropped`` notice and cut off, so no
client can stall the daemon or grow its memory. A burst (a check round's events) is let out
in slices after ``room``, which waits for the peers to take what is queued, so a peer that
is only later than the burst, not slower than the daemon, is not cut off; thousands of
changed domains go out as one ``reset`` (refetch them all), not one row each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from closte_sync.daemon.control.backend import DaemonActions
from closte_sync.daemon.control.hub import ControlHub
from closte_sync.daemon.control.ops import Handlers, OpError, event_filter
from closte_sync.daemon.control.peers import Decision, Peer, decide, group_id, peer_of
from closte_sync.daemon.control.rows import RowBuilder
from closte_sync.daemon.events import Event, Level, make_event
from closte_sync.daemon.settings import SocketSettings
from closte_sync.daemon.store import EventFilter, Store
from closte_sync.daemon.store.levels import RANK
from closte_sync.shared.protocol import (
    CHANGING_OPS,
    MAX_REQUEST_BYTES,
    ErrorCode,
    LineSplitter,
    Op,
    ProtocolError,
    Push,
    PushMessage,
    Reply,
    Request,
    Role,
    Topic,
    decode_request,
    encode,
)
from closte_sync.shared.secret import Secret, mask, scrub_url_keys, spellings

log = logging.getLogger(__name__)

EVENT_KIND = "control"
SOCKET_MODE = 0o660


class ControlServerError(Exception):
    """The socket cannot be set up; the message names the path and the reason."""


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 64
    max_pending_pushes: int = 2000  # per connection; more and it is dropped
    max_in_flight: int = 8  # concurrent requests per connection
    stall_timeout_s: float = 10.0  # a peer that reads nothing this long is dropped
    abort_after_s: float = 2.0  # after the drop notice, how long the peer has to take it
    # Changed domains remembered between writes (at most half max_pending_pushes); more,
    # and the peer is told to refetch them all.
    max_dirty_domains: int = 10_000


class _Masker:
    """Masks every spelling of the registered secrets (and any ``apikey=``) in a line."""

    def __init__(self, secrets: Iterable[Secret | None]) -> None:
        self._forms: list[tuple[str, str]] = []
        for secret in secrets:
            value = secret.reveal() if secret is not None else ""
            if not value:
                continue
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            for form in {*spellings(value), escaped}:
                self._forms.append((form, mask(value)))
        self._forms.sort(key=lambda pair: len(pair[0]), reverse=True)

    def line(self, data: bytes) -> bytes:
        text = data.decode()
        for form, shown in self._forms:
            if form in text:
                text = text.replace(form, shown)
        if "apikey=" in text.lower():
            text = scrub_url_keys(text)
        return text.encode()


def _matches(flt: EventFilter, event: Event) -> bool:
    if flt.min_level is not None and RANK.get(Level(event.level), 0) < RANK[flt.min_level]:
        return False
    if flt.domain is not None and event.domain != flt.domain:
        return False
    if flt.kind is not None and event.kind != flt.kind:
        return False
    if flt.since is not None and event.time < flt.since:
        return False
    if flt.text:
        needle = flt.text.casefold()
        haystack = f"{event.message}\n{json.dumps(dict(event.details), default=str)}"
        if needle not in haystack.casefold():
            return False
    return True


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "id": None,
        "time": event.time,
        "level": str(event.level),
        "kind": event.kind,
        "domain": event.domain,
        "message": event.message,
        "details": dict(event.details),
    }


def _version() -> str:
    try:
        return metadata.version("closte-sync")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Connection:
    def __init__(
        self,
        server: ControlServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
        decision: Decision,
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self.peer = peer
        self.decision = decision
        self._limits = server.limits
        self._out: deque[tuple[bytes, bool]] = deque()  # (line, is_push)
        self._pending_pushes = 0
        self._wake = asyncio.Event()
        self._topics: set[Topic] = set()
        self._filter = EventFilter()
        self._dirty: set[str] = set()
        self._dirty_all = False
        # Thousands of changed rows (a check round) are cheaper refetched in one call than
        # read and pushed one by one, and would not fit the pushes a peer may have waiting:
        # past this many, the peer is told to refetch them all.
        self._dirty_limit = min(
            self._limits.max_dirty_domains, self._limits.max_pending_pushes // 2
        )
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closing = False
        self._drained = asyncio.Event()  # set whenever the writer has caught up
        self.dropped = False

    # -- the hub's side: called from the daemon's code path, never blocks ------------------

    def on_event(self, event: Event) -> None:
        if Topic.EVENTS in self._topics and _matches(self._filter, event):
            self._push(PushMessage(Push.EVENT, _event_json(event)))

    def on_domain(self, domain: str) -> None:
        if Topic.DOMAINS not in self._topics or self.dropped:
            return
        if len(self._dirty) >= self._dirty_limit:
            self._dirty_all = True
            self._dirty.clear()
        elif not self._dirty_all:
            self._dirty.add(domain)
        self._wake.set()

    # -- queueing --------------------------------------------------------------------------

    def _push(self, message: PushMessage) -> None:
        if self.dropped:
            return
        if self._pending_pushes >= self._limits.max_pending_pushes:
            self.drop(f"fell behind: {self._pending_pushes} messages were waiting to be read")
            return
        self._pending_pushes += 1
        self._out.append((encode(message), True))
        self._wake.set()

    async def room(self, count: int, *, timeout: float = 5.0) -> None:
        """Wait until ``count`` more pushes fit under ``max_pending_pushes`` (or nothing is
        waiting), for a producer of bursts; a peer that reads nothing meanwhile is dropped
        by the next push that does not fit, as ever."""
        limit = self._limits.max_pending_pushes
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (
                    not self.dropped
                    and self._pending_pushes
                    and self._pending_pushes + count > limit
                ):
                    self._drained.clear()
                    self._wake.set()
                    await self._drained.wait()

    def _answer(self, reply: Reply) -> None:
        if not self.dropped:
            self._out.append((encode(reply), False))
            self._wake.set()

    def _error(self, request_id: int | str | None, code: ErrorCode, message: str) -> None:
        self._answer(Reply(request_id, False, code=code, message=message))

    def drop(self, reason: str) -> None:
        """Send the notice (best effort), cut the peer off, and tell the operator."""
        if self.dropped:
            return
        self.dropped = True
        self._drained.set()
        self._server.hub.remove(self)
        self._out.clear()
        self._dirty.clear()
        self._pending_pushes = 0
        transport = self._writer.transport
        with contextlib.suppress(Exception):
            notice = encode(PushMessage(Push.DROPPED, {"reason": reason}))
            transport.write(notice)
            transport.close()  # sends what is buffered, then closes
        loop = asyncio.get_running_loop()
        loop.call_later(self._limits.abort_after_s, transport.abort)
        self._wake.set()
        loop.call_soon(
            self._server.hub.emit,
            make_event(
                Level.WARNING,
                EVENT_KIND,
                f"control socket: dropped {self.peer.who}: {reason}",
                pid=self.peer.pid,
            ),
        )

    def abort(self) -> None:
        """The server is closing: stop at once, answer nothing more."""
        self.dropped = True
        self._drained.set()
        self._server.hub.remove(self)
        self._out.clear()
        for task in list(self._in_flight):
            task.cancel()
        self._writer.transport.abort()
        self._wake.set()

    # -- the connection's tasks ------------------------------------------------------------

    async def run(self) -> None:
        writer_task = asyncio.create_task(self._write_loop(), name="control writer")
        self._push(
            PushMessage(
                Push.HELLO,
                {
                    "protocol": 1,
                    "version": _version(),
                    "pid": os.getpid(),
                    "user": self.peer.user,
                    "uid": self.peer.uid,
                    "role": self.decision.role,
                    "may_change": self.decision.role is Role.ADMIN,
                    "reason": self.decision.reason,
                },
            )
        )
        splitter = LineSplitter(MAX_REQUEST_BYTES)
        try:
            while not self.dropped:
                # A peer that sends faster than it reads its answers waits here, so the
                # answers queued for it stay bounded.
                while len(self._out) > self._limits.max_pending_pushes and not self.dropped:
                    self._drained.clear()
                    await self._drained.wait()
                data = await self._reader.read(65536)
                if not data:
                    break
                for line in splitter.feed(data):
                    self._take(line)
        except (ConnectionError, OSError):
            pass
        finally:
            self._server.hub.remove(self)
            if self._in_flight and not self.dropped:
                # The peer closed its side: answer what it asked before it did.
                await asyncio.wait(set(self._in_flight), timeout=self._limits.stall_timeout_s)
            for task in list(self._in_flight):
                task.cancel()
            self._wake.set()
            if not self.dropped:
                # Let the answers already queued go out before closing.
                self._closing = True
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(writer_task), 1.0)
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer_task
            self._writer.transport.abort() if self.dropped else self._writer.close()

    def _take(self, line: bytes | None) -> None:
        if line is None:
            self._error(
                None, ErrorCode.TOO_LARGE, f"a request may be at most {MAX_REQUEST_BYTES} bytes"
            )
            return
        if not line.strip():
            return
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            self._error(exc.request_id, exc.code, exc.message)
            return
        if request.op in CHANGING_OPS and self.decision.role is not Role.ADMIN:
            self._error(
                request.id,
                ErrorCode.FORBIDDEN,
                f"{self.peer.who} may only look ({self.decision.reason})",
            )
            return
        if len(self._in_flight) >= self._limits.max_in_flight:
            self._error(
                request.id,
                ErrorCode.BUSY,
                f"{self._limits.max_in_flight} requests are already in progress on this "
                "connection; wait for their answers",
            )
            return
        task = asyncio.create_task(self._serve(request), name=f"control {request.op.value}")
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _serve(self, request: Request) -> None:
        try:
            result = await self._dispatch(request)
        except OpError as exc:
            self._error(request.id, exc.code, exc.message)
        except Exception as exc:
            log.exception("control: %s failed", request.op.value)
            self._error(request.id, ErrorCode.INTERNAL, f"{request.op.value} failed: {exc!s}"[:500])
        else:
            self._answer(Reply(request.id, True, result))

    async def _dispatch(self, request: Request) -> Any:
        if request.op is Op.SUBSCRIBE:
            return self._subscribe(request)
        if request.op is Op.UNSUBSCRIBE:
            self._topics.clear()
            self._server.hub.remove(self)
            return {"topics": []}
        return await self._server.handlers.handle(request.op, request.args, self.peer)

    def _subscribe(self, request: Request) -> dict[str, Any]:
        raw = request.args.get("topics", [t.value for t in Topic])
        if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
            raise OpError(ErrorCode.BAD_ARGS, "'topics' must be a list of strings")
        try:
            topics = {Topic(t) for t in raw}
        except ValueError:
            known = ", ".join(t.value for t in Topic)
            raise OpError(ErrorCode.BAD_ARGS, f"unknown topic; known: {known}") from None
        self._filter = event_filter(request.args)
        self._topics = topics
        self._server.hub.add(self)
        return {"topics": sorted(t.value for t in topics)}

    async def _write_loop(self) -> None:
        masker = self._server.masker
        while not self.dropped:
            if not self._out and not (self._dirty or self._dirty_all):
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._dirty or self._dirty_all:
                await self._queue_domain_rows()
            while self._out and not self.dropped:
                line, is_push = self._out.popleft()
                if is_push:
                    self._pending_pushes -= 1
                self._writer.write(masker.line(line))
            try:
                await asyncio.wait_for(self._writer.drain(), self._limits.stall_timeout_s)
            except TimeoutError:
                self.drop(f"read nothing for {self._limits.stall_timeout_s:g} s")
                return
            except (ConnectionError, OSError):
                return
            finally:
                self._drained.set()

    async def _queue_domain_rows(self) -> None:
        if self._dirty_all:
            self._dirty_all = False
            self._dirty.clear()
            self._push(PushMessage(Push.DOMAIN, {"reset": True}))
            return
        names = sorted(self._dirty)
        self._dirty.clear()
        tries = self._server.handlers.tries()
        for name in names:
            row = await self._server.rows.row(name, tries)
            self._push(
                PushMessage(Push.DOMAIN, {"domain": name, "row": row.to_json() if row else None})
            )


class _CacheKeeper:
    """The server's own hub listener: a changed domain's cached extras are stale."""

    def __init__(self, rows: RowBuilder) -> None:
        self._rows = rows

    def on_event(self, event: Event) -> None:
        if event.domain and event.level in (Level.WARNING, Level.ERROR):
            self._rows.forget(event.domain)

    def on_domain(self, domain: str) -> None:
        self._rows.forget(domain)


class ControlServer:
    def __init__(
        self,
        settings: SocketSettings,
        store: Store,
        actions: DaemonActions,
        hub: ControlHub,
        *,
        daemon_uid: int | None = None,
        secrets: Iterable[Secret | None] = (),
        limits: ServerLimits | None = None,
    ) -> None:
        self.settings = settings
        self.hub = hub
        self.limits = limits or ServerLimits()
        self.rows = RowBuilder(store)
        self.handlers = Handlers(store, actions, self.rows)
        self.masker = _Masker(secrets)
        self._daemon_uid = os.geteuid() if daemon_uid is None else daemon_uid
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cache_keeper = _CacheKeeper(self.rows)
        self._inode: int | None = None

    @property
    def path(self) -> Path:
        return self.settings.path

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        sock = await asyncio.to_thread(self._bind)
        self._server = await asyncio.start_unix_server(self._accept, sock=sock)
        self.hub.add(self._cache_keeper)

    def _bind(self) -> socket.socket:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ControlServerError(f"{path.parent}: cannot create: {exc.strerror}") from None
        self._remove_stale(path)
        gid = -1
        if self.settings.group:
            try:
                gid = group_id(self.settings.group)
            except KeyError as exc:
                raise ControlServerError(str(exc.args[0])) from None
        temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(temporary))
            os.chmod(temporary, SOCKET_MODE)
            if gid >= 0:
                os.chown(temporary, -1, gid)
            sock.listen(128)
            os.replace(temporary, path)
        except OSError as exc:
            sock.close()
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise ControlServerError(f"{path}: cannot set up the socket: {exc}") from None
        sock.setblocking(False)
        self._inode = path.stat().st_ino
        return sock

    @staticmethod
    def _remove_stale(path: Path) -> None:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlServerError(
                f"{path}: exists and is not a socket; remove it or choose another [socket] path"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # left by a daemon that died
            return
        finally:
            probe.close()
        raise ControlServerError(f"{path}: another closte-sync daemon is listening there")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve_peer(reader, writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        peer = peer_of(sock)
        decision = await asyncio.to_thread(decide, peer, self.settings, self._daemon_uid)
        refusal: tuple[ErrorCode, str] | None = None
        if decision.role is None:
            refusal = (ErrorCode.FORBIDDEN, decision.reason)
        elif len(self._connections) >= self.limits.max_connections:
            refusal = (ErrorCode.BUSY, f"{self.limits.max_connections} clients are connected")
        if refusal is not None:
            with contextlib.suppress(Exception):
                writer.write(encode(Reply(None, False, code=refusal[0], message=refusal[1])))
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.transport.abort() if refusal[0] is ErrorCode.BUSY else writer.close()
            self.hub.emit(
                make_event(
                    Level.WARNING, EVENT_KIND, f"control socket: refused {peer.who}: {refusal[1]}"
                )
            )
            return
        connection = _Connection(self, reader, writer, peer, decision)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    async def aclose(self) -> None:
        self.hub.remove(self._cache_keeper)
        if self._server is not None:
            self._server.close()
        # Cut every client off; their tasks then end on their own.
        for connection in list(self._connections):
            connection.abort()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        # Remove the socket only if it is still ours (not a newer daemon's).
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()
        self._inode = None
