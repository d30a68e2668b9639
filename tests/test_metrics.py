"""The Prometheus endpoint: the real daemon (a subprocess) on the sandbox, scraped over
loopback; names checked with `promtool check metrics` when it is installed, else with
prometheus_client's own parser and the naming rules promtool applies."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import DaemonProcess, lay_out
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from closte_sync.daemon.config import ConfigError, load_config
from closte_sync.daemon.metrics.collector import DaemonCollector, DomainCounts
from closte_sync.daemon.metrics.endpoint import CountsCache
from closte_sync.daemon.metrics.listen import parse_listen
from closte_sync.daemon.metrics.store_counts import StoreCountReader, StoreCounts
from closte_sync.daemon.settings import StoreSettings
from closte_sync.daemon.store import Stage, Wish, open_store
from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]

METRICS_LINE = re.compile(r"metrics at (http://\S+/metrics)")


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(found: Mapping[str, Metric], sample: str, **labels: str) -> float:
    for family in found.values():
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {sample} {labels}")


def check_conventions(text: str) -> None:
    """promtool's lint where it is installed; else the same rules over the parsed text."""
    promtool = shutil.which("promtool")
    if promtool is not None:
        done = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return
    for family in text_string_to_metric_families(text):
        name = family.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert name.startswith(("closte_sync_", "process_")), name
        assert family.documentation, f"{name} has no HELP"
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
        else:
            assert not name.endswith("_total"), f"{name}: only counters end in _total"
        if family.type == "histogram":
            assert name.endswith("_seconds"), f"{name}: a duration is in seconds"
        for bad in ("_milliseconds", "_ms", "_minutes", "_count_", "__"):
            assert bad not in name, name


# -- the setting -----------------------------------------------------------------------------


def test_listen_addresses_parse_and_bad_ones_say_why() -> None:
    assert parse_listen("127.0.0.1:9810") == ("127.0.0.1", 9810)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("localhost:9810") == ("localhost", 9810)
    for bad, why in (
        ("9810", "host:port"),
        ("metrics.example:9810", "not an IP address"),
        ("127.0.0.1:99999", "0 to 65535"),
        ("127.0.0.1:http", "0 to 65535"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_listen(bad)


def test_the_setting_is_off_by_default_and_a_bad_value_names_its_place(tmp_path: Path) -> None:
    assert load_config(None, env={}, cwd=tmp_path).settings.metrics.listen is None
    config = tmp_path / "closte-sync.toml"
    config.write_text('[metrics]\nlisten = "127.0.0.1:9810"\n')
    loaded = load_config(config, env={}, cwd=tmp_path)
    assert loaded.settings.metrics.listen == "127.0.0.1:9810"
    config.write_text('[metrics]\nlisten = "everywhere"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={}, cwd=tmp_path)
    assert str(config) in str(caught.value) and "listen" in str(caught.value)
    with pytest.raises(ConfigError, match="CLOSTE_SYNC_METRICS_LISTEN"):
        load_config(None, env={"CLOSTE_SYNC_METRICS_LISTEN": "host:port"}, cwd=tmp_path)


# -- the collector on its own -----------------------------------------------------------------


def scrape_collector(status: Mapping[str, Any], counts: DomainCounts) -> dict[str, Metric]:
    registry = CollectorRegistry()
    registry.register(DaemonCollector(lambda: status, lambda: counts, clock=lambda: 1000.0))
    text = generate_latest(registry).decode()
    check_conventions(text)
    return families(text)


def test_a_standby_with_held_removals_and_a_sick_source() -> None:
    store = StoreCounts()
    store.by_state["held"] = 7
    store.by_stage["checking-dns"] = 2
    found = scrape_collector(
        {
            "role": "standby (leader: web1, since 12:00)",
            "started_at": 900.0,
            "passes": 3,
            "last_pass_at": 990.0,
            "last_good_pass_at": 940.0,
            "held_plan": {"id": "abc", "domains": ["a.test", "b.test"], "reason": "25 %"},
            "held_removals": ["c.test"],
            "sources": {
                "database": {"healthy": False, "domains": 5},
                "file": {"healthy": True, "domains": 2},
            },
        },
        DomainCounts(StoreCounts(store.by_state, store.by_stage, held=7, owned=4), 9),
    )
    assert value(found, "closte_sync_leader") == 0
    assert value(found, "closte_sync_last_good_pass_age_seconds") == 60
    assert value(found, "closte_sync_held_removals", reason="guard") == 2
    assert value(found, "closte_sync_held_removals", reason="source_unreadable") == 1
    assert value(found, "closte_sync_source_healthy", source="database") == 0
    assert value(found, "closte_sync_source_healthy", source="file") == 1
    assert value(found, "closte_sync_domains_desired") == 9
    assert value(found, "closte_sync_domains_owned") == 4
    assert value(found, "closte_sync_ledger_domains", state="held") == 7
    assert value(found, "closte_sync_ledger_domains", state="refused") == 0
    assert value(found, "closte_sync_domains_in_stage", stage="checking-dns") == 2
    assert value(found, "closte_sync_passes_total") == 3


def test_before_any_good_pass_the_age_runs_from_the_start() -> None:
    found = scrape_collector({"started_at": 400.0}, DomainCounts(StoreCounts(), 0))
    assert value(found, "closte_sync_leader") == 1  # no role said: a single daemon leads
    assert value(found, "closte_sync_last_good_pass_age_seconds") == 600
    assert "closte_sync_last_good_pass_timestamp_seconds" not in found


# -- the real daemon ------------------------------------------------------------------------


async def test_the_daemon_serves_what_it_did(closte_sandbox: Sandbox, tmp_path: Path) -> None:
    mapped = ["shop.example.test", "blog.example.test"]
    site = lay_out(
        closte_sandbox,
        tmp_path,
        mappings=[(name, 1) for name in mapped],
        file_lines=["landing.example.test"],
    )
    site.point_at_network(*mapped, "landing.example.test")
    daemon = await DaemonProcess.start(site, CLOSTE_SYNC_METRICS_LISTEN="127.0.0.1:0")
    try:
        url = METRICS_LINE.search(daemon.lines[await daemon.wait_for("metrics at")])
        assert url is not None
        await daemon.wait_for("pass:", "in sync")
        for name in (*mapped, "landing.example.test"):
            await daemon.wait_for(f"domain-{name}", "Marking domain as done")
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(url.group(1))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        text = answer.text
        check_conventions(text)
        found = families(text)

        held = len(site.held())
        assert held == 3
        assert value(found, "closte_sync_domains_desired") == 3
        assert value(found, "closte_sync_domains_held") == held
        assert value(found, "closte_sync_domains_owned") == held
        assert value(found, "closte_sync_ledger_domains", state="held") == held
        assert value(found, "closte_sync_domains_in_stage", stage="done") == 3
        assert value(found, "closte_sync_domains_in_stage", stage="checking-dns") == 0
        assert value(found, "closte_sync_closte_calls_total", operation="add", kind="done") == 3
        assert value(found, "closte_sync_closte_calls_total", operation="list", kind="done") >= 1
        assert value(found, "closte_sync_closte_call_duration_seconds_count", operation="add") == 3
        assert value(found, "closte_sync_pass_duration_seconds_count") >= 1
        assert value(found, "closte_sync_passes_total") >= 1
        assert value(found, "closte_sync_in_sync") == 1
        assert value(found, "closte_sync_leader") == 1
        assert value(found, "closte_sync_source_healthy", source="database") == 1
        assert value(found, "closte_sync_source_domains", source="database") == 2
        assert value(found, "closte_sync_held_removals", reason="guard") == 0
        assert 0 <= value(found, "closte_sync_last_good_pass_age_seconds") < 3600
        assert closte_sandbox.api_key not in text

        # A removal moves the counts: the next scrape reads them again.
        mark = len(daemon.lines)
        site.delete_mapping("blog.example.test")
        await daemon.wait_for("remove blog.example.test: done", start=mark)
        await daemon.wait_for("pass:", start=mark)
        async with httpx.AsyncClient(timeout=10) as http:
            found = families((await http.get(url.group(1))).text)
        assert value(found, "closte_sync_domains_desired") == 2
        assert value(found, "closte_sync_domains_held") == 2
        assert value(found, "closte_sync_ledger_domains", state="removed") == 1
        assert value(found, "closte_sync_closte_calls_total", operation="remove", kind="done") == 1
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
    assert closte_sandbox.api_key not in daemon.text


async def test_off_by_default_and_a_taken_port_does_not_stop_the_sync(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path, file_lines=["landing.example.test"])
    site.point_at_network("landing.example.test")
    daemon = await DaemonProcess.start(site)
    try:
        await daemon.wait_for("pass:", "in sync")
        assert "metrics" not in daemon.text
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = await DaemonProcess.start(site, CLOSTE_SYNC_METRICS_LISTEN=f"127.0.0.1:{port}")
        try:
            line = daemon.lines[await daemon.wait_for("no metrics on")]
            assert f"127.0.0.1:{port}" in line
            await daemon.wait_for("pass:", "in sync")
            assert await daemon.stop() == 0
        finally:
            await daemon.kill()


# -- the cached counts ---------------------------------------------------------------------


async def test_counts_are_read_again_only_after_a_change(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    async with await open_store(StoreSettings(path=path)) as store:
        names = ["a.example.test", "b.example.test"]
        await store.ledger.settle({n: Wish("database") for n in names}, ["a.example.test"])
        await store.stages.track({"a.example.test": Stage.CHECKING_DNS})
        async with StoreCountReader(path) as reader:
            cache = CountsCache(reader, desired=lambda: len(names))
            first = await cache.fresh()
            assert first.desired == 2 and first.store.held == 1 and first.store.owned == 0
            assert first.store.by_state["wanted"] == 1
            assert first.store.by_stage["checking-dns"] == 1

            await store.ledger.mark_adding("b.example.test")
            await store.ledger.confirm_added("b.example.test")
            assert await cache.fresh() is first  # nothing said it changed: no read
            cache.mark_stale()
            second = await cache.fresh()
            assert second.store.held == 2 and second.store.owned == 1
            assert second.store.by_state["wanted"] == 0
