"""The stage checks: DNS (does the domain point at the network?) and TLS (is its certificate
valid?), as the Ultimate Multisite plugin makes them, with the reasons when they fail."""

from closte_sync.daemon.checks.dns_check import DnsChecker
from closte_sync.daemon.checks.resolver import DnsResolver, Lookup
from closte_sync.daemon.checks.results import CheckResult
from closte_sync.daemon.checks.target import NetworkTarget
from closte_sync.daemon.checks.tls_check import TlsChecker, expiry_warning

__all__ = [
    "CheckResult",
    "DnsChecker",
    "DnsResolver",
    "Lookup",
    "NetworkTarget",
    "TlsChecker",
    "expiry_warning",
]
