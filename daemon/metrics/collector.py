"""The scrape-time Collector: the daemon's live state and the cached domain counts.

Everything here is read from memory when Prometheus asks: ``status`` is the daemon's
``live_status()`` (what the socket's status shows), ``counts`` the last domain counts read
from the store. Nothing is queried from here, so a scrape costs the same with ten domains
or ten thousand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from closte_sync.daemon.metrics.store_counts import StoreCounts


@dataclass(frozen=True)
class DomainCounts:
    store: StoreCounts
    desired: int  # what the sources want, merged


class DaemonCollector:
    """A prometheus_client Collector (``collect()``), registered with the endpoint's
    registry."""

    def __init__(
        self,
        status: Callable[[], Mapping[str, Any]],
        counts: Callable[[], DomainCounts],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._status = status
        self._counts = counts
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        now = self._clock()
        yield from self._domains(self._counts())
        yield from self._passes(status, now)
        yield from self._sources(status)
        role = str(status.get("role", "leader"))
        yield _gauge(
            "closte_sync_leader",
            "1 when this daemon acts for the network (the leader), 0 on a standby",
            1 if role == "leader" else 0,
        )
        info = InfoMetricFamily("closte_sync_build", "The closte-sync version running")
        info.add_metric([], {"version": str(status.get("version", "unknown"))})
        yield info
        started = status.get("started_at")
        if isinstance(started, int | float):
            yield _gauge(
                "closte_sync_start_time_seconds",
                "When the daemon started, in seconds since the epoch",
                started,
            )

    def _domains(self, counts: DomainCounts) -> Iterator[Metric]:
        store = counts.store
        yield _gauge(
            "closte_sync_domains_desired",
            "Domains the sources want on Closte (database and domains file, merged)",
            counts.desired,
        )
        yield _gauge(
            "closte_sync_domains_held",
            "Domains Closte holds at the last look, whoever added them",
            store.held,
        )
        yield _gauge(
            "closte_sync_domains_owned",
            "Domains Closte holds that closte-sync added (the only ones it may remove)",
            store.owned,
        )
        yield _labelled(
            "closte_sync_ledger_domains",
            "Domains in the ledger by state (wanted, adding, held, refused...)",
            "state",
            store.by_state,
        )
        yield _labelled(
            "closte_sync_domains_in_stage",
            "Domains by the plugin's stage (checking-dns, checking-ssl-cert, done...)",
            "stage",
            store.by_stage,
        )

    def _passes(self, status: Mapping[str, Any], now: float) -> Iterator[Metric]:
        passes = CounterMetricFamily("closte_sync_passes", "Reconcile passes run")
        passes.add_metric([], float(status.get("passes", 0)))
        yield passes
        last = status.get("last_pass_at")
        good = status.get("last_good_pass_at")
        if isinstance(last, int | float):
            yield _gauge(
                "closte_sync_last_pass_timestamp_seconds",
                "When the last pass ended, in seconds since the epoch",
                last,
            )
        if isinstance(good, int | float):
            yield _gauge(
                "closte_sync_last_good_pass_timestamp_seconds",
                "When the last pass that could read Closte's list ended",
                good,
            )
        # With no good pass yet the age runs from the start: an alert on it fires either way.
        since = good if isinstance(good, int | float) else status.get("started_at", now)
        yield _gauge(
            "closte_sync_last_good_pass_age_seconds",
            "Seconds since the last good pass (since the start when none succeeded yet)",
            max(0.0, now - float(since)),
        )
        yield _gauge(
            "closte_sync_in_sync",
            "1 when the last pass left Closte holding what is desired, nothing held back",
            1 if status.get("in_sync") else 0,
        )
        plan = status.get("held_plan")
        guard = len(plan.get("domains", ())) if isinstance(plan, Mapping) else 0
        unreadable = len(status.get("held_removals", ()))
        yield _labelled(
            "closte_sync_held_removals",
            "Removals not made: refused by the guard (a mass removal waiting for release)"
            " or held while the domain's source cannot be read",
            "reason",
            {"guard": guard, "source_unreadable": unreadable},
        )

    def _sources(self, status: Mapping[str, Any]) -> Iterator[Metric]:
        sources = status.get("sources", {})
        healthy = GaugeMetricFamily(
            "closte_sync_source_healthy",
            "1 when the source was read at its last try; 0 keeps its domains from removal",
            labels=("source",),
        )
        domains = GaugeMetricFamily(
            "closte_sync_source_domains",
            "Domains the source wants, at its last good read",
            labels=("source",),
        )
        if isinstance(sources, Mapping):
            for name, source in sorted(sources.items()):
                if isinstance(source, Mapping):
                    healthy.add_metric([str(name)], 1 if source.get("healthy") else 0)
                    domains.add_metric([str(name)], float(source.get("domains", 0)))
        yield healthy
        yield domains


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _labelled(
    name: str, documentation: str, label: str, values: Mapping[str, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=(label,))
    for key, value in sorted(values.items()):
        family.add_metric([key], float(value))
    return family
