"""Fault knobs for the sandbox's Closte API: latency, error rates, per-domain failures.

Set them when the sandbox is built (``Faults(latency_ms=50, rates={"server_error": 0.1})``)
or while it runs (``POST /_sandbox/faults`` with the same names as JSON). The random draws
come from one seeded RNG, so a test that sets ``seed`` sees the same faults every run.

Which fault wins for a request, in order: the ``queue`` (the next requests fail with these
kinds, one each, whatever they ask), then a ``domains`` override for the request's domain,
then one draw against ``rates``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

# How GET /getdomains writes its items (Closte's shape is not documented; each is plausible):
# "objects": {"domain": "*.a.com", "wildcard": true}; "names": "*.a.com";
# "flagged": {"domain": "a.com", "wildcard": 1} (a bare name and the flag);
# "garbled": {"host": "a.com", "ssl": true} (a shape no client can read).
ListStyle = Literal["objects", "names", "flagged", "garbled"]
LIST_STYLES: tuple[ListStyle, ...] = ("objects", "names", "flagged", "garbled")


class FaultKind(StrEnum):
    SERVER_ERROR = "server_error"  # HTTP 503 with a JSON error
    RATE_LIMIT = "rate_limit"  # HTTP 429 with Retry-After
    TIMEOUT = "timeout"  # hold the request past the client's timeout
    RESET = "reset"  # abort the connection without an answer
    EMPTY = "empty"  # HTTP 200 with an empty body
    MALFORMED = "malformed"  # HTTP 200 with broken JSON
    HTML = "html"  # an HTML error page, as a proxy in front of the API would send
    PERMISSION = "permission"  # HTTP 403: the key is valid but not allowed
    HTML_401 = "html_401"  # an HTML 401 page (a proxy or web server asking for a login)
    HTML_403 = "html_403"  # an HTML 403 page (a firewall)
    HTML_404 = "html_404"  # an HTML 404 page: the URL is not Closte's API
    NOT_FOUND_404 = "not_found_404"  # HTTP 404 with {"error": "Domain alias not found"}
    APP_NOT_FOUND = "app_not_found"  # HTTP 200 with {"error": "Application not found"}
    ENDPOINT_NOT_FOUND = "endpoint_not_found"  # HTTP 200 {"error": "API endpoint not found"}
    REDIRECT = "redirect"  # HTTP 301 to another URL, as a web server in front might send


class FaultsError(ValueError):
    """A fault setting that makes no sense; the message names the field."""


@dataclass
class DomainFault:
    kind: FaultKind
    times: int | None = None  # how many more requests fail; None: all of them

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "times": self.times}


class Faults:
    """The sandbox API's fault settings; mutable at run time, deterministic given ``seed``."""

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        rates: Mapping[str, float] | None = None,
        domains: Mapping[str, Any] | None = None,
        queue: list[str] | None = None,
        retry_after: str = "1",
        hold_s: float = 30.0,
        seed: int = 0,
        list_style: ListStyle = "objects",
    ) -> None:
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.rates: dict[FaultKind, float] = {}
        self.domains: dict[str, DomainFault] = {}
        self.queue: deque[FaultKind] = deque()
        self.retry_after = "1"  # the Retry-After header value: seconds or an HTTP-date
        self.hold_s = 30.0
        self.seed = seed
        self.list_style: ListStyle = "objects"
        self._rng = random.Random(seed)
        self.update(
            {
                "latency_ms": latency_ms,
                "jitter_ms": jitter_ms,
                "rates": dict(rates or {}),
                "domains": dict(domains or {}),
                "queue": list(queue or []),
                "retry_after": retry_after,
                "hold_s": hold_s,
                "list_style": list_style,
            }
        )

    def update(self, data: Mapping[str, Any]) -> None:
        """Apply the settings in ``data`` (the JSON of POST /_sandbox/faults).

        Everything is checked before anything changes, so a bad field changes nothing.
        Fields not given keep their values; ``rates``, ``domains`` and ``queue`` replace
        the whole table when given.
        """
        unknown = set(data) - _FIELDS
        if unknown:
            raise FaultsError(
                f"faults: unknown field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}"
            )
        changes: dict[str, Any] = {}
        for name in ("latency_ms", "jitter_ms", "hold_s"):
            if name in data:
                changes[name] = _non_negative(name, data[name])
        if "rates" in data:
            changes["rates"] = _rates(data["rates"])
        if "domains" in data:
            changes["domains"] = _domains(data["domains"])
        if "queue" in data:
            items = data["queue"]
            if not isinstance(items, list):
                raise FaultsError("faults: field 'queue' must be a list of fault kinds")
            changes["queue"] = deque(_kind(f"queue[{i}]", v) for i, v in enumerate(items))
        if "retry_after" in data:
            changes["retry_after"] = str(data["retry_after"])
        if "list_style" in data:
            if data["list_style"] not in LIST_STYLES:
                raise FaultsError(
                    f"faults: field 'list_style' must be one of {list(LIST_STYLES)}, "
                    f"not {data['list_style']!r}"
                )
            changes["list_style"] = data["list_style"]
        if "seed" in data:
            if not isinstance(data["seed"], int):
                raise FaultsError("faults: field 'seed' must be an integer")
            changes["seed"] = data["seed"]
        for name, value in changes.items():
            setattr(self, name, value)
        if "seed" in changes:
            self._rng = random.Random(self.seed)

    def delay_s(self) -> float:
        """How long to wait before answering this request."""
        jitter = self._rng.uniform(0.0, self.jitter_ms) if self.jitter_ms else 0.0
        return (self.latency_ms + jitter) / 1000.0

    def choose(self, domain: str | None) -> FaultKind | None:
        """The fault this request gets, or None for a normal answer."""
        if self.queue:
            return self.queue.popleft()
        if domain is not None and domain in self.domains:
            override = self.domains[domain]
            if override.times is None:
                return override.kind
            if override.times > 0:
                override.times -= 1
                return override.kind
        if self.rates:
            draw = self._rng.random()
            for kind, rate in self.rates.items():
                if draw < rate:
                    return kind
                draw -= rate
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "rates": {str(k): v for k, v in self.rates.items()},
            "domains": {d: f.to_json() for d, f in self.domains.items()},
            "queue": [str(k) for k in self.queue],
            "retry_after": self.retry_after,
            "hold_s": self.hold_s,
            "seed": self.seed,
            "list_style": self.list_style,
        }


_FIELDS = frozenset(
    {
        "latency_ms",
        "jitter_ms",
        "rates",
        "domains",
        "queue",
        "retry_after",
        "hold_s",
        "seed",
        "list_style",
    }
)


def _kind(field: str, value: object) -> FaultKind:
    try:
        return FaultKind(str(value))
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultsError(
            f"faults: field {field!r}: unknown fault {value!r} (known: {known})"
        ) from None


def _non_negative(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultsError(f"faults: field {field!r} must be a number >= 0, not {value!r}")
    return float(value)


def _rates(value: object) -> dict[FaultKind, float]:
    if not isinstance(value, Mapping):
        raise FaultsError("faults: field 'rates' must be an object {fault kind: share}")
    rates: dict[FaultKind, float] = {}
    for name, share in value.items():
        kind = _kind(f"rates.{name}", name)
        number = _non_negative(f"rates.{name}", share)
        if number > 1:
            raise FaultsError(f"faults: field 'rates.{name}' must be between 0 and 1")
        rates[kind] = number
    if sum(rates.values()) > 1.0 + 1e-9:
        raise FaultsError("faults: field 'rates': the shares add up to more than 1")
    return rates


def _domains(value: object) -> dict[str, DomainFault]:
    if not isinstance(value, Mapping):
        raise FaultsError("faults: field 'domains' must be an object {domain: fault kind}")
    result: dict[str, DomainFault] = {}
    for domain, spec in value.items():
        field = f"domains.{domain}"
        if isinstance(spec, DomainFault):
            result[str(domain)] = DomainFault(spec.kind, spec.times)
        elif isinstance(spec, Mapping):
            times = spec.get("times")
            if times is not None and (not isinstance(times, int) or times < 0):
                raise FaultsError(f"faults: field '{field}.times' must be an integer >= 0")
            result[str(domain)] = DomainFault(_kind(f"{field}.kind", spec.get("kind")), times)
        else:
            result[str(domain)] = DomainFault(_kind(field, spec))
    return result
