"""``benchmarks/hostile.py`` answers ``--help`` and ``--list`` without starting a server, and
prints a report's markdown table again (``--table-from``). The run itself is a benchmark,
not a test: see BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "hostile.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_help_and_list():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert "--out" in out.stdout and "500 MB" in out.stdout
    listed = run("--list")
    assert listed.returncode == 0, listed.stderr
    assert "bomb-header-png-30000x30000" in listed.stdout and "put mask" in listed.stdout


def test_table_from_a_report(tmp_path):
    row = {"name": "thin-1x128-png", "endpoint": "predict student", "status": 422, "message": "too | thin",
           "rss_growth_mb": 0.0, "cpu_s": 0.01, "wall_s": 0.02, "met": True, "note": ""}
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": [row]}))
    out = run("--table-from", str(report))
    assert out.returncode == 0, out.stderr
    assert "| thin-1x128-png | predict student | 422 | too \\| thin | 0 | 0.01 | 0.02 | met |" in out.stdout
