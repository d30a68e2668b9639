"""The metrics endpoint: ``GET /metrics`` on ``[metrics] listen``, served by aiohttp.

Why aiohttp and not prometheus_client's own ``start_http_server``: that server runs in a
thread, and its collectors would read the daemon's state from that thread while the event
loop changes it. On the loop (aiohttp is already a dependency, and prometheus_client ships
an aiohttp handler: content negotiation, OpenMetrics, compression) a scrape reads a
consistent picture and stops with the daemon.

The domain counts that live in the store are cached. Anything that can move them (an event,
a domain's change) marks the cache stale; the next scrape reads them again, on the counts'
own read-only connection, off the loop. A quiet daemon's scrapes read nothing at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

from closte_sync.daemon.events import EventSink, Level, make_event
from closte_sync.daemon.metrics.calls import CallMetrics
from closte_sync.daemon.metrics.collector import DaemonCollector, DomainCounts
from closte_sync.daemon.metrics.listen import parse_listen, url_of
from closte_sync.daemon.metrics.store_counts import StoreCountReader, StoreCounts

if TYPE_CHECKING:
    from closte_sync.daemon.control.hub import ControlHub

KIND = "metrics"
# A scrape that finds the counts stale waits this long for them, then serves the old ones.
REFRESH_TIMEOUT_S = 5.0


class CountsCache:
    def __init__(self, reader: StoreCountReader, desired: Callable[[], int]) -> None:
        self._reader = reader
        self._desired = desired
        self._lock = asyncio.Lock()
        self._stale = True
        self.value = DomainCounts(StoreCounts(), 0)
        self.last_error: str | None = None

    def mark_stale(self) -> None:
        self._stale = True

    async def fresh(self) -> DomainCounts:
        """The counts, read again first when something changed since the last read."""
        async with self._lock:
            if self._stale:
                self._stale = False  # a change during the read marks it stale again
                try:
                    store = await self._reader.read()
                except BaseException as exc:  # failed or cut short (timeout): read again next time
                    self._stale = True
                    self.last_error = repr(exc)
                    raise
                self.last_error = None
                self.value = DomainCounts(store, self._desired())
        return self.value


class MetricsEndpoint:
    def __init__(
        self,
        registry: CollectorRegistry,
        cache: CountsCache,
        reader: StoreCountReader,
        runner: web.AppRunner,
        url: str,
        on_close: Callable[[], None],
    ) -> None:
        self.registry = registry
        self.cache = cache
        self._reader = reader
        self._runner = runner
        self.url = url
        self._on_close = on_close

    @classmethod
    async def start(
        cls,
        listen: str,
        *,
        store_path: Path,
        status: Callable[[], Mapping[str, Any]],
        desired: Callable[[], int],
        hub: ControlHub,
        events: EventSink,
    ) -> MetricsEndpoint:
        """Listen on ``listen`` (``host:port``); OSError when the address cannot be bound."""
        host, port = parse_listen(listen)
        reader = await StoreCountReader(store_path).__aenter__()
        cache = CountsCache(reader, desired)
        registry = CollectorRegistry(auto_describe=True)
        calls = CallMetrics(registry, on_change=cache.mark_stale)
        registry.register(DaemonCollector(status, lambda: cache.value))
        ProcessCollector(registry=registry)  # CPU, memory, open files of this process
        serve = make_aiohttp_handler(registry)
        warned = False

        async def metrics(request: web.Request) -> web.StreamResponse:
            nonlocal warned
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_S):
                    await cache.fresh()
                warned = False
            except (RuntimeError, TimeoutError) as exc:
                if not warned:  # once per spell of failures, not once per scrape
                    warned = True
                    message = f"domain counts not refreshed, serving the last ones: {exc!r}"
                    events.emit(make_event(Level.WARNING, KIND, message))
            return await serve(request)

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await reader.__aexit__(None, None, None)
            raise
        bound_port = _bound_port(runner, port)
        hub.add(calls)
        return cls(
            registry, cache, reader, runner, url_of(host, bound_port), lambda: hub.remove(calls)
        )

    async def aclose(self) -> None:
        self._on_close()
        await self._runner.cleanup()
        await self._reader.__aexit__(None, None, None)


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    """The port really bound (``:0`` asks the kernel for a free one)."""
    for address in runner.addresses:
        return int(address[1])
    return asked
