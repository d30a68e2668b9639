"""Closte calls and passes, counted from the events the daemon already emits.

The Closte client reports every call as one ``integration-closte`` event with its
operation, result kind and elapsed time; the daemon says ``pass: ...`` when a pass ends.
This listener sits on the control hub beside the socket's subscribers, so the client and
the reconciler need no knowledge of metrics. It only counts: ``on_event`` returns at once.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from closte_sync.daemon.closte.client import EVENT_KIND as CLOSTE_KIND
from closte_sync.daemon.closte.results import ResultKind
from closte_sync.daemon.events import Event

DAEMON_KIND = "daemon"  # closte_sync.daemon.service.daemon.KIND
PASS_PREFIX = "pass: "  # the daemon's line for each finished pass
PASS_FAILED_PREFIX = "the pass failed"
_PASS_ENDS = (PASS_PREFIX, PASS_FAILED_PREFIX)
# Closte answers within a second or two; the client's own timeout is 45 s.
CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 45.0, 90.0)
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OPERATIONS = ("add", "remove", "list")


class CallMetrics:
    """A ``HubListener``: counts Closte calls and times passes; ``on_change`` is told of
    anything that may have moved the store's counts."""

    def __init__(self, registry: CollectorRegistry, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self.calls = Counter(
            "closte_sync_closte_calls",
            "Closte API calls by operation and result kind (done, domain-taken, timeout...)",
            ("operation", "kind"),
            registry=registry,
        )
        self.call_seconds = Histogram(
            "closte_sync_closte_call_duration_seconds",
            "Time one Closte API call took, its retries included",
            ("operation",),
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.pass_seconds = Histogram(
            "closte_sync_pass_duration_seconds",
            "Time a reconcile pass took, from asking Closte for its list to the last call",
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        for operation in OPERATIONS:
            # Present from the first scrape, so rate() and absent() work before any call.
            self.calls.labels(operation, str(ResultKind.DONE))
            self.call_seconds.labels(operation)
        self._pass_started: float | None = None

    def on_event(self, event: Event) -> None:
        if event.kind == CLOSTE_KIND:
            self._on_call(event)
        elif event.kind == DAEMON_KIND and event.message.startswith(_PASS_ENDS):
            started, self._pass_started = self._pass_started, None
            if started is not None:
                self.pass_seconds.observe(max(0.0, event.time - started))
        self._on_change()

    def on_domain(self, domain: str) -> None:
        self._on_change()

    def _on_call(self, event: Event) -> None:
        details = event.details
        operation = details.get("operation")
        kind = details.get("result")
        elapsed = details.get("elapsed")
        if not isinstance(operation, str) or not isinstance(kind, str):
            return
        self.calls.labels(operation, kind).inc()
        if isinstance(elapsed, int | float):
            self.call_seconds.labels(operation).observe(float(elapsed))
            # Every pass begins with Closte's list: the pass started when that call did.
            if operation == "list" and self._pass_started is None:
                self._pass_started = event.time - float(elapsed)
