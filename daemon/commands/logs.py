"""`closte-sync logs [--follow] [--domain D] [--level L] [--since T]`: the event log.

Without ``--follow`` it prints the newest ``--lines`` events, oldest first. With it, it
subscribes first and then prints the history, so nothing that happens in between is lost,
and keeps printing new events until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from closte_sync.daemon.control.cli_support import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    add_common,
    clock,
    parse_since,
    print_error,
    run_with_client,
)
from closte_sync.daemon.control.client import ControlClient
from closte_sync.shared.protocol import LEVELS, EventRow, Op, Push, PushMessage, event_filter_args

PAGE = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("--domain", metavar="D", help="only this domain's events")
    parser.add_argument("--level", choices=LEVELS, help="this level and above")
    parser.add_argument("--since", metavar="T", help="10m, 2h, 1d, 2026-01-31 or '... 14:00'")
    parser.add_argument("--text", metavar="TEXT", help="only events whose text contains TEXT")
    parser.add_argument(
        "-n", "--lines", type=int, default=50, metavar="N", help="how many past events (50)"
    )
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print_error(args, "bad_args", str(exc), sys.stdout, sys.stderr)
        return 2
    flt = event_filter_args(level=args.level, domain=args.domain, text=args.text, since=since)
    return run_with_client(args, lambda client: show(client, args, flt, sys.stdout))


def line_of(event: EventRow) -> str:
    where = f" [{event.domain}]" if event.domain and event.domain not in event.kind else ""
    return f"{clock(event.time)} {event.level.upper():<7} {event.kind}: {event.message}{where}"


def _print(event: EventRow, as_json: bool, out: TextIO) -> None:
    out.write((json.dumps(event.to_json(), default=str) if as_json else line_of(event)) + "\n")
    out.flush()


async def history(client: ControlClient, flt: dict[str, Any], count: int) -> list[EventRow]:
    """The newest ``count`` events, oldest first, a page at a time (keyset)."""
    events: list[EventRow] = []
    before: int | None = None
    while len(events) < count:
        args: dict[str, Any] = {"filter": flt, "limit": min(PAGE, count - len(events))}
        if before is not None:
            args["before_id"] = before
        page = [EventRow.from_json(e) for e in (await client.call(Op.EVENTS, **args))["events"]]
        if not page:
            break
        events.extend(page)
        before = page[-1].id
    return events[::-1]


async def show(
    client: ControlClient, args: argparse.Namespace, flt: dict[str, Any], out: TextIO
) -> int:
    live: asyncio.Queue[EventRow] = asyncio.Queue()

    def on_push(message: PushMessage) -> None:
        if message.push == Push.EVENT:
            live.put_nowait(EventRow.from_json(message.data))

    if args.follow:
        client.on_push = on_push
        await client.call(Op.SUBSCRIBE, topics=["events"], filter=flt)
    past = await history(client, flt, max(0, args.lines)) if args.lines > 0 else []
    for event in past:
        _print(event, args.json, out)
    if not args.follow:
        return EXIT_OK
    # Pushes that arrived while the history was read may be in it already.
    shown = {(e.time, e.kind, e.message) for e in past[-PAGE:]}
    newest = past[-1].time if past else 0.0
    closed = asyncio.ensure_future(client.closed.wait())
    try:
        while True:
            getter = asyncio.ensure_future(live.get())
            await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                print_error(args, "unreachable", client.close_reason, out, sys.stderr)
                return EXIT_UNREACHABLE
            event = getter.result()
            if event.time <= newest and (event.time, event.kind, event.message) in shown:
                continue
            _print(event, args.json, out)
    finally:
        closed.cancel()
