"""Settings and checkers wired to a running sandbox (its DNS, TLS edge and CA bundle)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from closte_sync.daemon.checks import DnsChecker, DnsResolver, NetworkTarget
from closte_sync.daemon.settings import ChecksSettings, WordPressFacts
from closte_sync.sandbox.runner import Sandbox
from closte_sync.shared.hints import HINTS


def sandbox_settings(sb: Sandbox, **changes: Any) -> ChecksSettings:
    info = sb.info()
    settings = ChecksSettings(
        nameservers=(info["dns"],),
        network_ips=(sb.network_ip,),
        network_hosts=(sb.network_host,),
        tls_port=info["tls_port"],
        ca_bundle=Path(info["ca_bundle"]),
    )
    return replace(settings, **changes)


async def discover(
    settings: ChecksSettings, wordpress: WordPressFacts | None = None
) -> NetworkTarget:
    resolver = DnsResolver.from_settings(settings, deadline_s=5.0)
    return await NetworkTarget.discover(settings, wordpress or WordPressFacts(), resolver)


async def dns_checker(sb: Sandbox, deadline_s: float = 5.0, **options: Any) -> DnsChecker:
    settings = sandbox_settings(sb)
    return DnsChecker(settings, await discover(settings), deadline_s=deadline_s, **options)


def assert_known_hint(hint_id: str | None) -> None:
    assert hint_id is not None and hint_id in HINTS, f"{hint_id!r} is not in the hint catalogue"
