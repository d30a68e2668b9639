"""The control socket over a real Unix socket: protocol round trips, bad messages, stuck
subscribers, the socket file itself, and secrets kept out of everything served."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from control_fixtures import API_KEY, DB_PASSWORD, NOW, Running, running, running_server, socket_dir

from closte_sync.daemon.control.client import ControlClient, ControlError, DaemonUnavailable
from closte_sync.daemon.control.server import ControlServerError, ServerLimits
from closte_sync.daemon.events import Event, Level, make_event
from closte_sync.daemon.store import CheckKind, Stage
from closte_sync.daemon.store.stages import StageUpdate
from closte_sync.shared.protocol import (
    MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
    DomainRow,
    LineSplitter,
    Op,
    Push,
    PushMessage,
)
from closte_sync.shared.secret import mask

__all__ = ["running", "socket_dir"]


class RawPeer:
    """A client that speaks bytes, to send what a real client never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, path: Path) -> RawPeer:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 24)
        peer = cls(reader, writer)
        hello = await peer.read()
        assert hello["push"] == "hello"
        return peer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), 10)
        assert line, "the server closed the connection"
        value: dict[str, Any] = json.loads(line)
        return value

    async def request(self, op: str, **args: Any) -> dict[str, Any]:
        await self.send(json.dumps({"v": 1, "id": 1, "op": op, "args": args}).encode() + b"\n")
        return await self.read()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class StuckPeer:
    """A client whose socket is read only when the test says so: unread data stays in
    the kernel's buffers, as with a client that hangs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    @classmethod
    async def open(cls, path: Path) -> StuckPeer:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await asyncio.get_running_loop().sock_connect(sock, str(path))
        peer = cls(sock)
        assert (await peer.readline())["push"] == "hello"
        return peer

    async def readline(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        while b"\n" not in self.buffer:
            chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), 30)
            if not chunk:
                return {}
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        value: dict[str, Any] = json.loads(line)
        return value

    async def subscribe(self) -> None:
        request = b'{"v": 1, "id": 1, "op": "subscribe", "args": {"topics": ["events"]}}\n'
        await asyncio.get_running_loop().sock_sendall(self.sock, request)
        assert (await self.readline())["ok"] is True


async def wait_for_event(running: Running, predicate: Callable[[Event], bool]) -> Event:
    """Wait (bounded) for an event that goes through the hub."""
    seen: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

    class Listener:
        def on_event(self, event: Event) -> None:
            if predicate(event) and not seen.done():
                seen.set_result(event)

        def on_domain(self, domain: str) -> None:
            pass

    listener = Listener()
    running.hub.add(listener)
    try:
        return await asyncio.wait_for(seen, 15)
    finally:
        running.hub.remove(listener)


# -- round trips ------------------------------------------------------------------------


async def test_hello_then_status_domains_and_detail_round_trip(running: Running) -> None:
    async with await ControlClient.connect(running.path) as client:
        assert client.hello["role"] == "admin" and client.may_change
        assert client.hello["protocol"] == PROTOCOL_VERSION

        status = await client.call(Op.STATUS)
        assert status["daemon"]["interval"] == {"value": 300, "origin": "default"}
        assert status["domains"]["total"] == 4
        assert status["domains"]["by_stage"] == {
            "done": 1,
            "checking-dns": 1,
            "failed": 1,
            "none": 1,
        }

        rows = [DomainRow.from_json(r) for r in (await client.call(Op.DOMAINS))["domains"]]
        by_name = {row.domain: row for row in rows}
        assert sorted(by_name) == [
            "blog.example.org",
            "broken.example.com",
            "new.example.net",
            "shop.example.com",
        ]
        blog = by_name["blog.example.org"]
        assert (blog.stage, blog.tries, blog.max_tries, blog.origin) == (
            "checking-dns",
            3,
            5,
            "file",
        )
        assert blog.hint is not None and blog.hint["id"] == "dns-not-pointing"
        assert by_name["shop.example.com"].cert_expires_at == NOW + 80 * 86400
        assert by_name["broken.example.com"].trouble(NOW) == "stage failed"
        assert by_name["shop.example.com"].trouble(NOW) is None

        failed = (await client.call(Op.DOMAINS, stage="failed"))["domains"]
        assert [r["domain"] for r in failed] == ["broken.example.com"]

        detail = await client.call(Op.DOMAIN, domain="Blog.Example.ORG")
        assert detail["dns"]["details"]["answers"] == ["203.0.113.9"]
        assert detail["dns"]["details"]["expected"] == ["127.0.0.10"]
        assert [h["id"] for h in detail["hints"]] == ["dns-not-pointing"]
        assert [e["message"] for e in detail["events"]] == [
            "- DNS propagation not finished, retrying in 5 minutes..."
        ]
        with pytest.raises(ControlError) as missing:
            await client.call(Op.DOMAIN, domain="nope.example.com")
        assert missing.value.code == "not_found"
        assert "nope.example.com" in missing.value.message


async def test_event_pages_use_keyset_filters_and_counts(running: Running) -> None:
    async with await ControlClient.connect(running.path) as client:
        newest = (await client.call(Op.EVENTS, limit=2))["events"]
        assert [e["message"] for e in newest] == ["pass finished", "add failed: HTTP 502"]
        older = (await client.call(Op.EVENTS, limit=2, before_id=newest[-1]["id"]))["events"]
        assert older[0]["message"].startswith("- DNS propagation")
        assert all(e["id"] < newest[-1]["id"] for e in older)

        warnings = await client.call(Op.EVENTS, filter={"level": "warning"})
        assert [e["level"] for e in warnings["events"]] == ["error", "warning"]
        assert (await client.call(Op.EVENT_COUNT, filter={"text": "PASS"}))["count"] == 2
        by_domain = await client.call(Op.EVENT_COUNT, filter={"domain": "shop.example.com"})
        assert by_domain["count"] == 1

        running.hub.emit(make_event(Level.INFO, "reconcile", "pass started again"))
        after = await client.call(Op.EVENTS_AFTER, after_id=newest[0]["id"])
        assert [e["message"] for e in after["events"]] == ["pass started again"]

        with pytest.raises(ControlError) as bad:
            await client.call(Op.EVENTS, filter={"level": "loud"})
        assert bad.value.code == "bad_args" and "loud" in bad.value.message


async def test_changes_reach_the_daemon_and_refusals_carry_the_reason(running: Running) -> None:
    async with await ControlClient.connect(running.path) as client:
        answer = await client.call(Op.RETRY, domain="blog.example.org")
        assert answer == {"message": "blog.example.org: checking again now"}
        assert await client.call(Op.SET, key="interval", value=30) == {
            "message": "interval_s is now 30"
        }
        key, value, by = running.actions.calls[-1][1]
        assert (key, value) == ("interval_s", 30) and "uid 0" in by

        with pytest.raises(ControlError) as out_of_range:
            await client.call(Op.SET, key="interval", value=5)
        assert out_of_range.value.code == "bad_args"
        assert "10..300" in out_of_range.value.message

        with pytest.raises(ControlError) as wrong_plan:
            await client.call(Op.RELEASE, plan_id="plan-nope")
        assert wrong_plan.value.code == "refused" and "plan-nope" in wrong_plan.value.message

        with pytest.raises(ControlError) as unknown:
            await client.call(Op.RETRY, domain="ghost.example.com")
        assert unknown.value.code == "not_found"

        assert (await client.call(Op.TEST_CLOSTE))["ok"] is True
        assert (await client.call(Op.RESYNC))["message"] == "a reconcile pass has started"


async def test_subscription_streams_events_and_changed_domain_rows(running: Running) -> None:
    pushes: asyncio.Queue[PushMessage] = asyncio.Queue()
    async with await ControlClient.connect(running.path, on_push=pushes.put_nowait) as client:
        answer = await client.call(Op.SUBSCRIBE, filter={"level": "warning"})
        assert answer == {"topics": ["domains", "events"]}

        running.hub.emit(make_event(Level.INFO, "reconcile", "quiet"))
        running.hub.emit(make_event(Level.ERROR, "reconcile", "loud", domain="shop.example.com"))
        event = await asyncio.wait_for(pushes.get(), 10)
        assert event.push == Push.EVENT and event.data["message"] == "loud"

        await running.store.stages.record_check(
            "blog.example.org",
            CheckKind.DNS,
            ok=True,
            summary="A 127.0.0.10",
            update=StageUpdate(Stage.CHECKING_SSL_CERT, 0, NOW + 60),
        )
        running.hub.domain_changed("blog.example.org")
        changed = await asyncio.wait_for(pushes.get(), 10)
        assert changed.push == Push.DOMAIN
        assert changed.data["row"]["stage"] == "checking-ssl-cert"
        assert changed.data["row"]["max_tries"] == 20

        assert await client.call(Op.UNSUBSCRIBE) == {"topics": []}
        running.hub.emit(make_event(Level.ERROR, "reconcile", "unheard"))
        assert (await client.call(Op.STATUS))["domains"]["total"] == 4
        assert pushes.empty()


# -- bad input ----------------------------------------------------------------------------


async def test_malformed_unknown_and_oversized_messages_get_errors_not_a_crash(
    running: Running,
) -> None:
    peer = await RawPeer.open(running.path)
    try:
        await peer.send(b"{not json\n")
        reply = await peer.read()
        assert (reply["id"], reply["ok"], reply["error"]["code"]) == (None, False, "malformed")

        await peer.send(b"[1, 2]\n")
        assert (await peer.read())["error"]["code"] == "malformed"

        await peer.send(b'{"v": 1, "id": 5, "op": "launch_rockets"}\n')
        unknown = await peer.read()
        assert (unknown["id"], unknown["error"]["code"]) == (5, "unknown_op")
        assert "launch_rockets" in unknown["error"]["message"]

        await peer.send(b'{"v": 99, "id": 6, "op": "status"}\n')
        assert (await peer.read())["error"]["code"] == "version"

        await peer.send(b'{"v": 1, "id": 7, "op": "domains", "args": []}\n')
        assert (await peer.read())["error"]["code"] == "malformed"

        await peer.send(b'{"v": 1, "id": 8, "op": "events", "args": {"limit": "many"}}\n')
        assert (await peer.read())["error"]["code"] == "bad_args"

        await peer.send(b"\xff\xfe\n")
        assert (await peer.read())["error"]["code"] == "malformed"

        # Twice the limit, sent in pieces: refused once, the rest of the line skipped.
        huge = b'{"v": 1, "id": 9, "op": "status", "args": {"pad": "' + b"x" * (
            2 * MAX_REQUEST_BYTES
        )
        for start in range(0, len(huge), 10_000):
            await peer.send(huge[start : start + 10_000])
        await peer.send(b'"}}\n')
        too_large = await peer.read()
        assert too_large["error"]["code"] == "too_large"

        # The connection still works, and the server never tried to parse the tail.
        status = await peer.request("status")
        assert status["ok"] is True and status["id"] == 1
    finally:
        await peer.close()
    assert running.server.connection_count <= 1


def test_line_splitter_skips_an_oversized_line_in_any_chunking() -> None:
    message = b"a" * 30 + b"\n" + b"ok\n"
    for size in range(1, len(message) + 1):
        splitter = LineSplitter(limit=10)
        out: list[bytes | None] = []
        for start in range(0, len(message), size):
            out.extend(splitter.feed(message[start : start + size]))
        assert out == [None, b"ok"], size


# -- subscribers that cannot keep up ---------------------------------------------------


async def test_a_stuck_subscriber_is_dropped_with_a_notice(socket_dir: Path) -> None:
    limits = ServerLimits(max_pending_pushes=100, stall_timeout_s=3600, abort_after_s=60)
    async with running_server(socket_dir, limits=limits) as up:
        stuck = await StuckPeer.open(up.path)
        await stuck.subscribe()
        async with await ControlClient.connect(up.path) as other:
            dropped = asyncio.ensure_future(
                wait_for_event(up, lambda e: e.kind == "control" and "dropped" in e.message)
            )
            await asyncio.sleep(0)  # let the waiter register its listener
            # Far more than the socket buffers hold: the stuck peer falls behind.
            for i in range(5000):
                up.hub.emit(make_event(Level.INFO, "flood", f"event {i} " + "x" * 1000))
            notice = await dropped
            assert "fell behind" in notice.message
            # The daemon kept serving others throughout.
            assert (await other.call(Op.STATUS))["domains"]["total"] == 4
            assert up.hub.listener_count == 1  # only the server's own cache keeper

        # What the stuck peer finally reads ends with the notice, then the end.
        last: dict[str, Any] = {}
        while line := await stuck.readline():
            last = line
        assert last["push"] == "dropped" and "fell behind" in last["data"]["reason"]
        stuck.sock.close()


async def test_a_subscriber_that_reads_nothing_is_dropped_after_the_stall_timeout(
    socket_dir: Path,
) -> None:
    limits = ServerLimits(max_pending_pushes=1_000_000, stall_timeout_s=0.2, abort_after_s=0.1)
    async with running_server(socket_dir, limits=limits) as up:
        stuck = await StuckPeer.open(up.path)
        await stuck.subscribe()
        dropped = asyncio.ensure_future(
            wait_for_event(up, lambda e: e.kind == "control" and "dropped" in e.message)
        )
        await asyncio.sleep(0)
        for i in range(2000):
            up.hub.emit(make_event(Level.INFO, "flood", f"event {i} " + "y" * 1000))
        notice = await dropped
        assert "read nothing" in notice.message
        stuck.sock.close()


async def test_a_burst_emitted_with_room_reaches_a_subscriber_that_keeps_reading(
    socket_dir: Path,
) -> None:
    """A check round hands the hub thousands of events at once. Let out a slice at a time,
    each after ``hub.room``, they all reach a subscriber that reads; all at once, the same
    subscriber is dropped, though it was never slow, only later than the burst."""
    limits = ServerLimits(max_pending_pushes=300, stall_timeout_s=3600)
    async with running_server(socket_dir, limits=limits) as up:
        seen: list[str] = []
        arrived = asyncio.Event()

        def on_push(message: PushMessage) -> None:
            if message.push == Push.EVENT and message.data["kind"] == "burst":
                seen.append(message.data["message"])
                if len(seen) == 3000:
                    arrived.set()

        async with await ControlClient.connect(up.path, on_push=on_push) as steady:
            await steady.call(Op.SUBSCRIBE)
            burst = [make_event(Level.INFO, "burst", f"event {i}") for i in range(3000)]
            for start in range(0, len(burst), 200):
                await up.hub.room(200)
                for event in burst[start : start + 200]:
                    up.hub.emit(event)
            await asyncio.wait_for(arrived.wait(), 30)
            assert seen == [f"event {i}" for i in range(3000)]
            assert not steady.closed.is_set()

        async with await ControlClient.connect(up.path) as hasty:
            await hasty.call(Op.SUBSCRIBE)
            for event in burst:
                up.hub.emit(event)
            await asyncio.wait_for(hasty.closed.wait(), 10)
            assert "fell behind" in hasty.close_reason


async def test_thousands_of_changed_domains_are_one_reset_not_a_drop(socket_dir: Path) -> None:
    limits = ServerLimits(max_pending_pushes=100, stall_timeout_s=3600)
    async with running_server(socket_dir, limits=limits) as up:
        pushes: asyncio.Queue[PushMessage] = asyncio.Queue()
        async with await ControlClient.connect(up.path, on_push=pushes.put_nowait) as client:
            await client.call(Op.SUBSCRIBE, topics=["domains"])
            for i in range(500):  # far more than may wait to be read
                up.hub.domain_changed(f"site{i}.example.com")
            first = await asyncio.wait_for(pushes.get(), 10)
            assert first == PushMessage(Push.DOMAIN, {"reset": True})
            # The peer refetches the rows; a single change is pushed as its row again.
            assert (await client.call(Op.STATUS))["domains"]["total"] == 4
            up.hub.domain_changed("blog.example.org")
            row = await asyncio.wait_for(pushes.get(), 10)
            assert row.data["domain"] == "blog.example.org" and row.data["row"] is not None
            assert pushes.empty() and not client.closed.is_set()


# -- the socket file ---------------------------------------------------------------------


async def test_the_socket_is_0660_in_its_group_and_a_stale_one_is_replaced(
    socket_dir: Path,
) -> None:
    path = socket_dir / "control.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on: a daemon that died
    nobody_gid = pwd.getpwnam("nobody").pw_gid
    async with running_server(socket_dir, group=grp.getgrgid(nobody_gid).gr_name) as up:
        info = os.stat(up.path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == nobody_gid
        with pytest.raises(ControlServerError, match="another closte-sync daemon"):
            async with running_server(socket_dir, store_path=socket_dir / "other.sqlite3"):
                pass
        async with await ControlClient.connect(up.path) as client:
            assert (await client.call(Op.STATUS))["domains"]["total"] == 4
    assert not path.exists()  # removed on close


async def test_a_missing_daemon_is_reported_in_words(socket_dir: Path) -> None:
    with pytest.raises(DaemonUnavailable, match="not running: there is no socket"):
        await ControlClient.connect(socket_dir / "none.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(socket_dir / "dead.sock"))
    dead.close()
    with pytest.raises(DaemonUnavailable, match="nothing listens"):
        await ControlClient.connect(socket_dir / "dead.sock")


async def test_a_client_learns_when_the_daemon_goes_away(socket_dir: Path) -> None:
    async with running_server(socket_dir) as up:
        client = await ControlClient.connect(up.path)
        await up.server.aclose()
        await asyncio.wait_for(client.closed.wait(), 10)
        with pytest.raises(DaemonUnavailable):
            await client.call(Op.STATUS)
        await client.aclose()


# -- secrets -----------------------------------------------------------------------------


async def test_no_secret_crosses_the_socket(running: Running) -> None:
    served: list[bytes] = []
    peer = await RawPeer.open(running.path)
    try:
        for op, args in [
            ("status", {}),
            ("domains", {}),
            ("domain", {"domain": "new.example.net"}),
            ("events", {}),
            ("test_closte", {}),
            ("subscribe", {}),
        ]:
            await peer.send(json.dumps({"v": 1, "id": op, "op": op, "args": args}).encode() + b"\n")
            served.append(await asyncio.wait_for(peer.reader.readline(), 10))
        # A careless part of the daemon puts the key in an event: the push is masked too.
        running.hub.emit(
            make_event(
                Level.ERROR,
                "integration-closte",
                f"POST https://app.closte.com/api/client/adddomainalias?apikey={API_KEY}",
                password=DB_PASSWORD,
            )
        )
        served.append(await asyncio.wait_for(peer.reader.readline(), 10))
    finally:
        await peer.close()
    everything = b"".join(served).decode()
    assert '"ok":true' in everything
    assert "adddomainalias" in everything
    assert API_KEY not in everything and DB_PASSWORD not in everything
    assert mask(API_KEY) in everything  # the status's Secret, shown masked


async def test_a_peer_that_floods_requests_without_reading_is_cut_off(socket_dir: Path) -> None:
    limits = ServerLimits(max_pending_pushes=50, stall_timeout_s=0.5, abort_after_s=0.1)
    async with running_server(socket_dir, limits=limits) as up:
        flooder = await StuckPeer.open(up.path)
        dropped = asyncio.ensure_future(
            wait_for_event(up, lambda e: e.kind == "control" and "dropped" in e.message)
        )
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        garbage = b"x\n" * 50_000  # each line earns an error answer nobody reads
        # Sending stops when the server stops reading (it waits for its answers to drain)
        # or when it hangs up.
        with contextlib.suppress(OSError, TimeoutError):
            for _ in range(100):
                await asyncio.wait_for(loop.sock_sendall(flooder.sock, garbage), 5)
        notice = await dropped
        assert "read nothing" in notice.message
        async with await ControlClient.connect(up.path) as other:
            assert (await other.call(Op.STATUS))["domains"]["total"] == 4
        flooder.sock.close()
