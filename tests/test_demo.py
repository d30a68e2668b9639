"""The README's main job, run the way a user runs it: `closte-sync demo --no-tui`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_the_demo_tells_the_whole_story_headless(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "closte_sync.daemon.cli",
            "demo",
            "--no-tui",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = completed.stdout
    assert completed.returncode == 0, completed.stderr + out
    assert out.count("PASS") == 7
    # Domains move through the plugin's stages to done.
    for name in ("shop-example.test", "landing.example.test", "xn--bcher-laden-thb.test"):
        assert f"domain-{name}: - DNS propagation finished" in out
        assert f"domain-{name}: - Valid SSL cert found. Marking domain as done." in out
    assert "bücher-laden.test (xn--bcher-laden-thb.test)" in out
    # One fails DNS with the precise hint, one is refused by Closte with its own.
    assert re.search(
        r"wrong-dns\.example\.test resolves to 127\.0\.0\.9, expected 127\.0\.0\.2", out
    )
    assert "Closte refused to add taken.example.test" in out
    # The bad line of the domains file is named by file and line; the good ones still count.
    assert f"{tmp_path / 'domains.txt'}:4" in out
    assert "daemon stopped (exit 0)" in out
    # The sandbox's key appears only masked, on screen and in the store.
    key = re.search(
        r"CLOSTE_CLIENT_API_KEY', '([^']+)'", (tmp_path / "wordpress" / "wp-config.php").read_text()
    )
    assert key is not None
    assert key.group(1) not in out + completed.stderr
    for stored in (tmp_path / "state").iterdir():
        assert key.group(1).encode() not in stored.read_bytes(), stored
