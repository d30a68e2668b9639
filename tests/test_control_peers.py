"""Peer credentials: a client running as another user (a forked child that drops to
`nobody`) gets the role its groups allow, and no more."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pwd
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from control_fixtures import running_server, socket_dir

__all__ = ["socket_dir"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")

NOBODY = pwd.getpwnam("nobody").pw_uid
NOGROUP = pwd.getpwnam("nobody").pw_gid
NOGROUP_NAME = grp.getgrgid(NOGROUP).gr_name


def _talk_as_nobody(path: Path, requests: list[dict[str, Any]], out_fd: int) -> None:
    """In the child: become nobody, connect, send each request, record each answer."""
    answers: list[Any] = []
    try:
        os.setgroups([])
        os.setgid(NOGROUP)
        os.setuid(NOBODY)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            stream = sock.makefile("rwb")
            answers.append(json.loads(stream.readline()))
            for request in requests:
                stream.write(json.dumps(request).encode() + b"\n")
                stream.flush()
                line = stream.readline()
                if not line:
                    answers.append("closed")
                    break
                answers.append(json.loads(line))
            if not requests and not stream.readline():
                answers.append("closed")  # nothing asked: wait to see the server hang up
    except BaseException as exc:  # report anything, never run the parent's code
        answers.append(f"child failed: {exc!r}")
    finally:
        os.write(out_fd, json.dumps(answers).encode())
        os._exit(0)


async def as_nobody(path: Path, *ops: tuple[str, dict[str, Any]]) -> list[Any]:
    requests = [{"v": 1, "id": i, "op": op, "args": args} for i, (op, args) in enumerate(ops)]
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _talk_as_nobody(path, requests, write_fd)
    os.close(write_fd)

    def collect() -> bytes:
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        os.waitpid(pid, 0)
        return b"".join(chunks)

    answers: list[Any] = json.loads(await asyncio.wait_for(asyncio.to_thread(collect), 30))
    return answers


CHANGES = [
    ("retry", {"domain": "blog.example.org"}),
    ("resync", {}),
    ("release", {"plan_id": "plan-7f3a"}),
    ("set", {"key": "interval", "value": 30}),
    ("test_closte", {}),
]


async def test_group_members_may_look_but_not_change(socket_dir: Path) -> None:
    async with running_server(socket_dir, group=NOGROUP_NAME) as up:
        hello, status, *changes = await as_nobody(up.path, ("status", {}), *CHANGES)
        assert hello["data"]["role"] == "reader" and hello["data"]["may_change"] is False
        assert "read only" in hello["data"]["reason"]
        assert status["ok"] is True and status["result"]["domains"]["total"] == 4
        for answer in changes:
            assert answer["ok"] is False and answer["error"]["code"] == "forbidden"
            assert "nobody" in answer["error"]["message"]
            assert "may only look" in answer["error"]["message"]
        assert up.actions.calls == []


async def test_admin_group_members_may_change(socket_dir: Path) -> None:
    async with running_server(socket_dir, group="root", admin_group=NOGROUP_NAME) as up:
        # The socket's group is root's; let nobody reach it through admin_group's check
        # alone, as a socket shared through an ACL would.
        os.chmod(up.path, 0o666)
        hello, retry, setting = await as_nobody(
            up.path,
            ("retry", {"domain": "blog.example.org"}),
            ("set", {"key": "dns-tries", "value": 7}),
        )
        assert hello["data"]["role"] == "admin" and hello["data"]["may_change"] is True
        assert retry["ok"] is True and setting["result"]["message"] == "dns_tries is now 7"
        assert [name for name, _ in up.actions.calls] == ["retry", "set"]
        assert "nobody (uid" in up.actions.calls[1][1][2]


async def test_anyone_else_is_refused_with_the_reason(socket_dir: Path) -> None:
    async with running_server(socket_dir, group="root", admin_group="root") as up:
        os.chmod(up.path, 0o666)  # a mis-set mode: the credential check still holds
        refused, after = await as_nobody(up.path)
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
        assert "nobody" in refused["error"]["message"]
        assert "'root'" in refused["error"]["message"]
        assert after == "closed"


async def test_the_socket_mode_keeps_others_out_before_any_credential_check(
    socket_dir: Path,
) -> None:
    async with running_server(socket_dir) as up:
        assert stat.S_IMODE(os.stat(up.path).st_mode) == 0o660
        answers = await as_nobody(up.path, ("status", {}))
        assert len(answers) == 1 and "PermissionError" in answers[0]
