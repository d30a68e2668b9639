"""Helpers the reliability tests share."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any


class Follower:
    """A socket client that subscribes to everything and keeps every byte it receives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received = bytearray()
        self.lines = 0
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(str(self.path))
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            self.received += line
            self.lines += 1
            self._new.set()

    async def ask(self, number: int, op: str, **args: Any) -> None:
        assert self._writer is not None
        request = {"v": 1, "id": number, "op": op, "args": args}
        self._writer.write(json.dumps(request).encode() + b"\n")
        await self._writer.drain()

    async def wait_for(self, needle: bytes, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while needle not in self.received:
                self._new.clear()
                await self._new.wait()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
