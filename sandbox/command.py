"""`closte-sync sandbox`: run the sandbox on loopback until SIGINT or SIGTERM.

It prints where everything listens: a readable block, or with ``--json`` exactly one JSON line
(the shape DESIGN.md names), flushed at once so a parent process can read it and go on.
The API key printed is the sandbox's own made-up key; it opens nothing outside the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from closte_sync.sandbox.faults import Faults
from closte_sync.sandbox.runner import Sandbox
from closte_sync.sandbox.tls_edge import DEFAULT_CERT_DELAY_S


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535")
    return port


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON line of addresses")
    parser.add_argument("--api-key", metavar="KEY", help="the key the API accepts (default: new)")
    parser.add_argument(
        "--cert-delay",
        type=_non_negative,
        default=DEFAULT_CERT_DELAY_S,
        metavar="S",
        help=f"seconds until a new alias gets a valid certificate (default {DEFAULT_CERT_DELAY_S})",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative,
        default=0.0,
        metavar="N",
        help="added to every API answer, like a far-away server (default 0)",
    )
    for name in ("api", "dns", "tls"):
        parser.add_argument(
            f"--port-{name}",
            type=_port,
            default=0,
            metavar="N",
            help=f"{name.upper()} port on 127.0.0.1 (default 0: any free port)",
        )


def describe(info: dict[str, Any], network_host: str) -> str:
    """The readable block: each address with the setting it belongs in."""
    rows = [
        ("API", info["api"], "[closte] base_url"),
        ("API key", info["api_key"], "[closte] api_key"),
        ("DNS", f"{info['dns']} (UDP and TCP)", "[checks] nameservers"),
        ("TLS edge", f"127.0.0.1:{info['tls_port']}", "[checks] tls_port"),
        ("CA bundle", info["ca_bundle"], "[checks] ca_bundle"),
        ("network IP", f"{info['network_ip']} ({network_host})", "[checks] network_ips"),
    ]
    width = max(len(str(value)) for _, value, _ in rows)
    lines = ["closte-sync sandbox is running on loopback (Ctrl-C stops it)"]
    lines += [f"  {label:<11} {value!s:<{width}}  -> {hint}" for label, value, hint in rows]
    return "\n".join(lines)


async def serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Sandbox.running(
        [args.api_key] if args.api_key else None,
        cert_delay_s=args.cert_delay,
        faults=Faults(latency_ms=args.latency_ms),
        api_port=args.port_api,
        dns_port=args.port_dns,
        tls_port=args.port_tls,
    ) as sandbox:
        if args.json:
            print(json.dumps(sandbox.info()), flush=True)
        else:
            print(describe(sandbox.info(), sandbox.network_host), flush=True)
        await stop.wait()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(serve(args))
    except OSError as exc:
        print(f"closte-sync sandbox: cannot listen: {exc}", file=sys.stderr)
        return 1
