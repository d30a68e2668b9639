"""The sandbox's memory: which aliases each API key holds, and every request received.

One ``SandboxState`` is shared by the sandbox's HTTP API (which changes it), its TLS edge
(which issues certificates for what it holds) and its DNS responder. Listeners hear about
every add and remove so the TLS edge can schedule or revoke certificates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from closte_sync.shared.secret import mask

AliasChange = Literal["added", "removed"]
AliasListener = Callable[[AliasChange, str], None]


@dataclass(frozen=True)
class Alias:
    domain: str
    wildcard: bool
    added_at: float  # time.time() when Closte accepted it


@dataclass(frozen=True)
class RecordedRequest:
    time: float
    method: str
    path: str
    fields: dict[str, str]  # form or query fields, the apikey masked
    status: int
    outcome: str  # "ok", "error", or the fault injected ("reset", "timeout", ...)


@dataclass
class SandboxState:
    api_keys: set[str]
    network_ip: str = "127.0.0.2"
    clock: Callable[[], float] = time.time
    aliases: dict[str, dict[str, Alias]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    listeners: list[AliasListener] = field(default_factory=list)

    def key_is_valid(self, key: str) -> bool:
        return key in self.api_keys

    def held(self, key: str) -> dict[str, Alias]:
        return self.aliases.setdefault(key, {})

    def add_alias(self, key: str, domain: str, wildcard: bool) -> bool:
        """Add ``domain`` for ``key``; False when it was already there."""
        held = self.held(key)
        if domain in held:
            return False
        held[domain] = Alias(domain=domain, wildcard=wildcard, added_at=self.clock())
        self._tell("added", domain)
        return True

    def remove_alias(self, key: str, domain: str) -> bool:
        """Remove ``domain`` for ``key``; False when it was not there."""
        if self.held(key).pop(domain, None) is None:
            return False
        if self.find_alias(domain) is None:
            self._tell("removed", domain)
        return True

    def find_alias(self, domain: str) -> Alias | None:
        """The alias for ``domain`` under any key (the TLS edge serves them all)."""
        for held in self.aliases.values():
            if domain in held:
                return held[domain]
        return None

    def record(
        self, method: str, path: str, fields: dict[str, str], status: int, outcome: str
    ) -> None:
        shown = {k: (mask(v) if k == "apikey" else v) for k, v in fields.items()}
        self.requests.append(RecordedRequest(self.clock(), method, path, shown, status, outcome))

    def _tell(self, change: AliasChange, domain: str) -> None:
        for listener in list(self.listeners):
            listener(change, domain)
