"""`make bench`'s report: every benchmark run, its figure lines collected into one table and
one JSON file; a benchmark that cannot run is named; `compare` shows the change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "bench" / "_report.py"

FAST = """
import json
print("a table a person reads")
print(json.dumps({"figure": "speed", "value": %s, "unit": "s", "goal": 1.0,
                  "better": "lower", "met": %s}))
print('{"not": "a figure"}')
"""


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPORT), "--bench-dir", str(cwd / "bench"),
         "--results-dir", str(cwd / "results"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_run_collects_every_figure_and_compare_shows_the_change(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "alpha.py").write_text(FAST % ("0.5", "True"))
    (bench / "_helper.py").write_text("raise SystemExit('a helper is not a benchmark')\n")
    first = report("run", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "a table a person reads" in first.stdout  # the benchmark's own output, passed on
    (bench / "alpha.py").write_text(FAST % ("2.0", "False"))
    (bench / "broken.py").write_text("raise SystemExit(3)\n")
    second = report("run", cwd=tmp_path)
    assert second.returncode == 1
    assert "broken: could not run (exit 3)" in second.stdout

    written = sorted((tmp_path / "results").glob("*.json"))
    assert len(written) == 2
    data = json.loads(written[0].read_text())
    assert [f["figure"] for f in data["figures"]] == ["speed"]
    assert data["cores"] >= 1 and data["benchmarks"] == {"alpha": {"exit": 0, "figures": 1}}
    line = next(x for x in first.stdout.splitlines() if x.startswith("alpha"))
    assert line.split() == ["alpha", "speed", "0.5", "s", "<=", "1", "yes"]
    assert f"on {data['cores']} core(s)" in first.stdout

    compared = report("compare", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    row = next(x for x in compared.stdout.splitlines() if x.startswith("alpha"))
    assert row.split() == ["alpha", "speed", "0.5", "2", "+300.0%", "s", "worse", "yes", "NO"]


def test_compare_names_a_missing_or_bad_report(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bad.json").write_text("{}")
    missing = report("compare", "nowhere", "bad", cwd=tmp_path)
    assert missing.returncode != 0 and "nowhere: no such report" in missing.stderr
    bad = report("compare", str(tmp_path / "results" / "bad.json"), "bad", cwd=tmp_path)
    assert bad.returncode != 0 and "bad.json: not a benchmark report" in bad.stderr
