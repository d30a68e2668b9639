"""systemd's notify protocol: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1, RELOADING=1.

The protocol is one datagram to the socket named in ``NOTIFY_SOCKET`` (a path, or an
abstract name starting with '@'); ten lines do it, so no library is pulled in for it. Where
the variable is unset (a terminal, another supervisor) every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and (not pid or pid == str(os.getpid()))
        # Ping at half the watchdog period, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval_s: float | None = int(usec) / 2e6 if watched else None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, **fields: str) -> None:
        if not self._address:
            return
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        # A systemd that went away has nothing to be told: errors are dropped.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.sendto(message.encode(), self._address)

    def ready(self, status: str) -> None:
        self.send(ready="1", status=status)

    def status(self, status: str) -> None:
        self.send(status=status)

    def watchdog(self) -> None:
        self.send(watchdog="1")

    def reloading(self) -> None:
        self.send(reloading="1", monotonic_usec=str(time.monotonic_ns() // 1000))

    def stopping(self) -> None:
        self.send(stopping="1")
