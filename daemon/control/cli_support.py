"""What the socket subcommands (status, logs, domains, retry, set, release, tui) share:
where the socket is, connecting with a clear message when the daemon is not there, and
printing errors as text or JSON.

Several networks on one host run as instances of the template unit
``closte-sync@NAME.service``: configuration ``/etc/closte-sync/NAME.toml``, store
``/var/lib/closte-sync/NAME/``, socket ``/run/closte-sync/NAME/control.sock``.
``--instance NAME`` finds that socket; ``CLOSTE_SYNC_RUN_DIR`` moves the base
(``/run/closte-sync``) for a layout of one's own.

Exit status: 0 done, 1 the daemon said no (or status is unhealthy), 2 usage or
configuration, 3 the daemon cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from closte_sync.daemon.config import ConfigError, load_config
from closte_sync.daemon.control.client import ControlClient, ControlError, DaemonUnavailable
from closte_sync.daemon.settings import SocketSettings
from closte_sync.shared.protocol import Op

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


# -- instances (closte-sync@NAME.service) ----------------------------------------------------

RUN_DIR_ENV = "CLOSTE_SYNC_RUN_DIR"
RUN_DIR = Path("/run/closte-sync")  # the template unit's RuntimeDirectory=closte-sync/%i
CONFIG_DIR = Path("/etc/closte-sync")
STATE_DIR = Path("/var/lib/closte-sync")  # StateDirectory=closte-sync/%i
# What an instance name may be: a word that is also a safe file and unit name.
_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class InstancePaths:
    """Where instance NAME of the template unit keeps its files."""

    name: str
    config: Path
    store: Path
    socket: Path

    @classmethod
    def of(cls, name: str, env: Mapping[str, str] | None = None) -> InstancePaths:
        """ValueError (naming the instance) for a name that is not one word."""
        if not _INSTANCE.fullmatch(name):
            raise ValueError(
                f"instance {name!r}: use letters, digits, '.', '_' or '-' (at most 64),"
                " starting with a letter or digit, as in closte-sync@NAME.service"
            )
        environ = os.environ if env is None else env
        run_dir = Path(environ.get(RUN_DIR_ENV) or RUN_DIR)
        return cls(
            name=name,
            config=CONFIG_DIR / f"{name}.toml",
            store=STATE_DIR / name / "state.sqlite3",
            socket=run_dir / name / "control.sock",
        )


def _instance_name(text: str) -> str:
    try:
        return InstancePaths.of(text, {}).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_common(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help="the daemon's control socket (default: [socket] path from the configuration)",
    )
    where.add_argument(
        "--instance",
        type=_instance_name,
        metavar="NAME",
        help=f"the daemon of closte-sync@NAME.service: its socket {RUN_DIR}/NAME/control.sock"
        f" (the base from ${RUN_DIR_ENV} when set)",
    )


def add_instance_config(parser: argparse.ArgumentParser) -> None:
    """``--instance NAME`` for a command that reads the configuration itself."""
    parser.add_argument(
        "--instance",
        type=_instance_name,
        metavar="NAME",
        help=f"the network of closte-sync@NAME.service: its configuration {CONFIG_DIR}/NAME.toml"
        " (instead of --config)",
    )
    parser.set_defaults(instance_names_config=True)


def apply_instance_config(args: argparse.Namespace) -> str | None:
    """Turn ``--instance NAME`` into the configuration path, and the store and socket
    paths the template unit gives that instance; a message when both ``--instance`` and
    ``--config`` were given."""
    instance: str | None = getattr(args, "instance", None)
    if instance is None or not getattr(args, "instance_names_config", False):
        return None
    if args.config is not None:
        return "--config and --instance both name the configuration: give one"
    paths = InstancePaths.of(instance)
    args.config = paths.config
    # As the template unit does: the instance's own store and socket, over the file's.
    os.environ.setdefault("CLOSTE_SYNC_STORE_PATH", str(paths.store))
    os.environ.setdefault("CLOSTE_SYNC_SOCKET_PATH", str(paths.socket))
    return None


def socket_path(args: argparse.Namespace, err: TextIO | None = None) -> Path:
    """--socket, else --instance's socket, else ``[socket] path`` of the configuration,
    else the default path."""
    given: Path | None = getattr(args, "socket", None)
    if given is not None:
        return given
    instance: str | None = getattr(args, "instance", None)
    if instance is not None:
        return InstancePaths.of(instance).socket
    try:
        return load_config(getattr(args, "config", None)).settings.socket.path
    except ConfigError as exc:
        default = SocketSettings().path
        (err or sys.stderr).write(f"closte-sync: configuration error ({exc}); trying {default}\n")
        return default


def print_error(
    args: argparse.Namespace, code: str, message: str, out: TextIO, err: TextIO
) -> None:
    if getattr(args, "json", False):
        out.write(json.dumps({"ok": False, "error": {"code": code, "message": message}}) + "\n")
    else:
        err.write(f"closte-sync: {message}\n")


def run_with_client(
    args: argparse.Namespace,
    body: Callable[[ControlClient], Awaitable[int]],
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Connect, run ``body``, and turn the ways it can fail into messages and exit codes."""

    async def main(out: TextIO, err: TextIO) -> int:
        path = socket_path(args, err)
        try:
            async with await ControlClient.connect(path) as client:
                return await body(client)
        except DaemonUnavailable as exc:
            print_error(args, "unreachable", str(exc), out, err)
            return EXIT_UNREACHABLE
        except ControlError as exc:
            print_error(args, str(exc.code), exc.message, out, err)
            return EXIT_USAGE if exc.code == "bad_args" else EXIT_FAILED

    return asyncio.run(main(out or sys.stdout, err or sys.stderr))


def run_action(
    args: argparse.Namespace, op: Op, shown: Mapping[str, Any] | None = None, **fields: Any
) -> int:
    """One request that changes something: print the daemon's message, or with ``--json``
    its whole answer (with ``shown`` added, to echo what was asked)."""

    async def body(client: ControlClient) -> int:
        result = await client.call(op, **fields)
        if args.json:
            print_json({"ok": True, **(shown or {}), **result}, sys.stdout)
        else:
            print(result["message"])
        return EXIT_OK

    return run_with_client(args, body)


def print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


# -- times -------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """'10m', '2h', '1d' (ago), an ISO date or time (local unless it says), or epoch
    seconds; ValueError says which forms are accepted."""
    at = time.time() if now is None else now
    match = _RELATIVE.match(text)
    if match:
        number = float(match.group(1))
        unit = (match.group(2) or "s").lower()
        if match.group(2) is None and number > 100_000_000:
            return number  # epoch seconds
        return at - number * _UNITS[unit]
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use an age like 30s, 10m, 2h, 1d, a date like 2026-01-31, "
            "a time like '2026-01-31 14:00', or seconds since the epoch"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time, as the operator reads the clock
    return parsed.timestamp()


def clock(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def age(at: float | None, now: float) -> str:
    """'45 s ago', 'in 4 min', '-'."""
    if at is None:
        return "-"
    delta = now - at
    later = delta < 0
    seconds = abs(delta)
    if seconds < 90:
        text = f"{seconds:.0f} s"
    elif seconds < 90 * 60:
        text = f"{seconds / 60:.0f} min"
    elif seconds < 36 * 3600:
        text = f"{seconds / 3600:.0f} h"
    else:
        text = f"{seconds / 86400:.0f} d"
    return f"in {text}" if later else f"{text} ago"


def role_text(daemon: Mapping[str, Any], now: float) -> str:
    """'leader', or 'standby (leader: host, since ...)' on a node that waits its turn."""
    if daemon.get("role") != "standby":
        return "leader"
    leader = daemon.get("leader") or {}
    since = leader.get("since")
    when = f", since {clock(since)}" if since else ""
    return f"standby (leader: {leader.get('host', 'unknown')}{when})"
