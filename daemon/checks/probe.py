"""The name a check really asks about: the domain itself, or a fresh name under a wildcard."""

from __future__ import annotations

import secrets

from closte_sync.shared.domains import WILDCARD_PREFIX

PROBE_PREFIX = "closte-sync-probe-"


def probe_name(domain: str) -> str:
    """``domain`` itself, or for ``*.example.com`` a random label under it.

    A random label shows what any name under the wildcard gets, and cannot be mistaken for a
    name someone set up on its own.
    """
    if domain.startswith(WILDCARD_PREFIX):
        return f"{PROBE_PREFIX}{secrets.token_hex(4)}.{domain[len(WILDCARD_PREFIX) :]}"
    return domain
