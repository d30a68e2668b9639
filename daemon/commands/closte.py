"""`closte-sync closte`: talk to the Closte API by hand (add, remove, list, test).

Uses the same client, retries and limits as the daemon, with the settings the daemon would
use. ``--dry-run`` prints the request that would be sent (key masked) and sends nothing.
Exit status: 0 when the call succeeded, 1 when Closte (or the way to it) said no, 2 for a
usage or configuration problem.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from typing import Any, TextIO

from closte_sync.daemon.closte.client import ClosteClient, build_call
from closte_sync.daemon.closte.results import CallResult, ListResult, Operation
from closte_sync.daemon.settings import ClosteSettings
from closte_sync.shared.domains import DomainError, display
from closte_sync.shared.hints import Hint, get_hint

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text, takes_domain in (
        ("add", "add a domain alias (a '*.' name adds a wildcard alias)", True),
        ("remove", "remove a domain alias", True),
        ("list", "list the aliases Closte holds for this application", False),
        ("test", "check that Closte accepts the API key (as the plugin's test does)", False),
    ):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        if takes_domain:
            sub.add_argument("domain", metavar="DOMAIN", help="e.g. example.com or *.example.com")
        sub.add_argument(
            "--dry-run", action="store_true", help="print the request (key masked), send nothing"
        )
        sub.add_argument("--json", action="store_true", help="print the result as one JSON object")
        sub.add_argument(
            "--retries",
            type=int,
            metavar="N",
            help="retries of a transient failure (default: the configured retry budget)",
        )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_async(args, sys.stdout, sys.stderr))


async def run_async(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    operation: Operation = args.action
    domain: str | None = getattr(args, "domain", None)
    settings = _closte_settings(args, err)
    if settings is None:
        return EXIT_USAGE
    if args.retries is not None:
        if args.retries < 0:
            err.write("closte-sync closte: --retries must be 0 or more\n")
            return EXIT_USAGE
        settings = replace(settings, retry_budget=args.retries)
    if args.dry_run:
        return _dry_run(operation, domain, settings, args.json, out, err)
    if settings.api_key is None or not settings.api_key:
        _print_missing_key(args.json, out, err)
        return EXIT_USAGE
    async with ClosteClient(settings) as client:
        result = await _call(client, operation, domain)
    if args.json:
        out.write(json.dumps(_result_json(result)) + "\n")
    else:
        _print_result(result, out)
    return EXIT_OK if result.ok else EXIT_FAILED


def _closte_settings(args: argparse.Namespace, err: TextIO) -> ClosteSettings | None:
    # Imported here: the configuration loader is the heaviest import of this command.
    from closte_sync.daemon.config import ConfigError, load_config

    try:
        loaded = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        err.write(f"closte-sync closte: configuration error: {exc}\n")
        return None
    return loaded.settings.closte


async def _call(client: ClosteClient, operation: Operation, domain: str | None) -> CallResult:
    if operation == "add":
        return await client.add_alias(domain or "")
    if operation == "remove":
        return await client.remove_alias(domain or "")
    if operation == "list":
        return await client.list_aliases()
    return await client.test_connection()


def _dry_run(
    operation: Operation,
    domain: str | None,
    settings: ClosteSettings,
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    try:
        call = build_call(operation, domain)
    except DomainError as exc:
        err.write(f"closte-sync closte: invalid domain {exc.text!r}: {exc.reason}\n")
        return EXIT_FAILED
    text = call.describe(settings.base_url, settings.api_key)
    if as_json:
        data = {
            "dry_run": True,
            "operation": operation,
            "method": call.method,
            "url": settings.base_url.rstrip("/") + call.path,
            "fields": {
                "apikey": settings.api_key.masked if settings.api_key else None,
                **dict(call.fields),
            },
        }
        out.write(json.dumps(data) + "\n")
    else:
        out.write("dry run: this request would be sent (nothing was sent)\n\n" + text + "\n")
    return EXIT_OK


def _print_missing_key(as_json: bool, out: TextIO, err: TextIO) -> None:
    hint = get_hint("closte-no-api-key")
    if as_json:
        out.write(json.dumps({"ok": False, "kind": "no-api-key", "hint": hint.to_json()}) + "\n")
    else:
        err.write(f"closte-sync closte: {hint.title}\n")
        _print_hint(hint, err)


def _result_json(result: CallResult) -> dict[str, Any]:
    data = result.to_json()
    hint = None if result.ok else result.hint
    data["hint"] = hint.to_json() if hint is not None else None
    return data


def _print_result(result: CallResult, out: TextIO) -> None:
    subject = f" {display(result.domain)}" if result.domain else ""
    line = f"{result.operation}{subject}: {result.kind}"
    if result.message:
        line += f": {result.message}"
    out.write(line + "\n")
    tries = "1 attempt" if result.attempts == 1 else f"{result.attempts} attempts"
    status = f"HTTP {result.status}, " if result.status is not None else ""
    out.write(f"  ({status}{tries}, {result.elapsed:.2f} s)\n")
    if isinstance(result, ListResult) and result.ok:
        out.write(f"{len(result.domains)} alias(es):\n")
        for name in result.domains:
            out.write(f"  {display(name)}\n")
    hint = None if result.ok else result.hint
    if hint is not None:
        _print_hint(hint, out)


def _print_hint(hint: Hint, out: TextIO) -> None:
    out.write(f"\nhint [{hint.id}]: {hint.title}\n")
    out.write(f"  what it means: {hint.meaning}\n")
    out.write(f"  what to do: {hint.action}\n")
