"""The daemon's one call: start the metrics endpoint for a running engine, if configured.

The HTTP server and prometheus_client are imported only when ``[metrics] listen`` is set,
so a daemon without metrics does not load them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from closte_sync.daemon.events import Level, make_event

if TYPE_CHECKING:
    from closte_sync.daemon.metrics.endpoint import MetricsEndpoint
    from closte_sync.daemon.service.engine import Engine

KIND = "metrics"


async def open_metrics(
    engine: Engine, status: Callable[[], Mapping[str, Any]]
) -> MetricsEndpoint | None:
    """The endpoint for a running engine when ``[metrics] listen`` is set; None when it is
    not, or when it cannot listen (the daemon still syncs, and says why)."""
    listen = engine.settings.metrics.listen
    if listen is None:
        return None
    from closte_sync.daemon.metrics.endpoint import MetricsEndpoint

    try:
        endpoint = await MetricsEndpoint.start(
            listen,
            store_path=engine.store.path,
            status=status,
            desired=lambda: len(engine.desired()),
            hub=engine.hub,
            events=engine.events,
        )
    except (OSError, RuntimeError) as exc:
        engine.events.emit(make_event(Level.ERROR, KIND, f"no metrics on {listen}: {exc}"))
        return None
    engine.events.emit(make_event(Level.INFO, KIND, f"metrics at {endpoint.url}"))
    return endpoint
