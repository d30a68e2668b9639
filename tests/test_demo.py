"""The README's main job, run the way a user runs it: `closte-sync demo` in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_syncs_the_sample_network_to_the_sandbox(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "closte_sync.daemon.cli", "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = completed.stdout
    assert completed.returncode == 0, completed.stderr + out
    assert "checks passed" not in completed.stderr
    assert out.count("PASS") == 7
    assert "plan: add 6, remove 0, keep 0" in out
    assert "Closte now holds 6 aliases" in out
    assert "bücher-laden.test (xn--bcher-laden-thb.test)" in out
    # The bad line of the domains file is named by file and line; the good ones still count.
    assert f"{tmp_path / 'domains.txt'}:4" in out
    # The sandbox's key appears only masked.
    key = re.search(
        r"CLOSTE_CLIENT_API_KEY', '([^']+)'", (tmp_path / "wordpress" / "wp-config.php").read_text()
    )
    assert key is not None
    assert key.group(1) not in out + completed.stderr
    for stored in (tmp_path / "state").iterdir():
        assert key.group(1).encode() not in stored.read_bytes(), stored
