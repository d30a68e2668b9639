"""What a stage check found: one value the daemon stores, logs and shows as it is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from closte_sync.shared.domains import DomainError

CheckKind = Literal["dns", "tls"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one DNS or TLS check of one domain.

    ``summary`` is one line (what came back against what was expected); ``advice`` says what
    to do about a failure, built from the facts; ``hint_id`` names the catalogue entry in
    ``closte_sync.shared.hints``. ``inconclusive`` means the check could not be made at all
    (our resolver or network was down): the daemon must not count it as a failed try.
    """

    kind: CheckKind
    domain: str
    ok: bool
    summary: str
    hint_id: str | None
    advice: str | None
    details: Mapping[str, Any] = field(default_factory=dict)
    inconclusive: bool = False
    addresses: tuple[str, ...] = ()  # DNS: where the name points (for the TLS check)
    not_after: float | None = None  # TLS: certificate expiry (Unix time)
    issuer: str | None = None  # TLS
    names: tuple[str, ...] = ()  # TLS: the certificate's DNS names
    asked: str | None = None  # the name actually checked (a probe name for a wildcard)

    @classmethod
    def not_a_domain(cls, kind: CheckKind, domain: str, error: DomainError) -> CheckResult:
        """A mapping that holds no domain name: nothing to ask; the fix is the mapping's."""
        return cls(
            kind,
            domain,
            False,
            f"not a domain name: {error}",
            "domain-invalid",
            f"fix the mapping: {error.reason}",
            {"error": str(error)},
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for the store, the socket and the TUI)."""
        return {
            "kind": self.kind,
            "domain": self.domain,
            "ok": self.ok,
            "summary": self.summary,
            "hint_id": self.hint_id,
            "advice": self.advice,
            "details": dict(self.details),
            "inconclusive": self.inconclusive,
            "addresses": list(self.addresses),
            "not_after": self.not_after,
            "issuer": self.issuer,
            "names": list(self.names),
            "asked": self.asked,
        }
