from __future__ import annotations

import asyncio

import pytest

from closte_sync.daemon.events import Level, MemorySink, make_event


async def test_memory_sink_wakes_a_waiter_when_a_matching_event_arrives() -> None:
    sink = MemorySink()
    waiter = asyncio.create_task(sink.wait_for(lambda e: e.domain == "b.com", timeout=5))
    sink.emit(make_event(Level.INFO, "test", "first", domain="a.com"))
    await asyncio.sleep(0)  # let the waiter look at the first event (not a synchronisation)
    assert not waiter.done()
    sink.emit(make_event(Level.ERROR, "test", "second", domain="b.com", code=7))
    event = await waiter
    assert event.message == "second"
    assert event.details == {"code": 7}


async def test_memory_sink_wait_times_out() -> None:
    sink = MemorySink()
    with pytest.raises(TimeoutError):
        await sink.wait_for(lambda e: True, timeout=0.05)
