"""The running daemon through its control socket, the way an admin uses it: the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_harness import DaemonProcess, lay_out, run_cli

from closte_sync.sandbox.runner import Sandbox

pytest_plugins = ["closte_sync.sandbox.pytest_plugin"]


async def test_status_domains_retry_and_the_interval_over_the_socket(
    closte_sandbox: Sandbox, tmp_path: Path
) -> None:
    site = lay_out(closte_sandbox, tmp_path, file_lines=["ok.example.test", "taken.example.test"])
    site.point_at_network("ok.example.test")
    # Another Closte application holds this name: Closte refuses our add.
    other = "other-application-key"
    closte_sandbox.state.api_keys.add(other)
    closte_sandbox.state.add_alias(other, "taken.example.test", wildcard=False)
    daemon = await DaemonProcess.start(site)
    try:
        await daemon.wait_for("control socket at")
        await daemon.wait_for("domain-ok.example.test", "Marking domain as done")
        await daemon.wait_for("Closte refused to add taken.example.test")

        code, out, err = await run_cli(site, "status", "--json")
        status = json.loads(out)
        assert status["daemon"]["interval"] == {"value": 10, "origin": "config"}, err
        assert status["daemon"]["sources"]["domains-file"]["healthy"]

        code, out, _ = await run_cli(site, "domains", "--json")
        rows = {row["domain"]: row for row in json.loads(out)["domains"]}
        assert rows["ok.example.test"]["stage"] == "done"
        assert rows["taken.example.test"]["state"] == "refused"

        # The operator sets the interval live: applied, and said where it came from.
        code, out, err = await run_cli(site, "set", "interval", "30")
        assert code == 0, (out, err)
        code, out, _ = await run_cli(site, "status", "--json")
        assert json.loads(out)["daemon"]["interval"] == {"value": 30, "origin": "operator"}
        code, out, _ = await run_cli(site, "set", "interval", "5")
        assert code != 0 and "10" in out + _

        # The other application lets the name go; a retry adds it.
        closte_sandbox.state.remove_alias(other, "taken.example.test")
        mark = len(daemon.lines)
        code, out, err = await run_cli(site, "retry", "taken.example.test")
        assert code == 0, (out, err)
        await daemon.wait_for("add taken.example.test: done", start=mark)
        assert "taken.example.test" in site.held()
    finally:
        await daemon.kill()
    assert closte_sandbox.api_key not in daemon.text
