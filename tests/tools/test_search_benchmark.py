"""benchmarks/search_speed.py still runs (a small run in a fresh process), so its figures can be
taken again: it prints a row per sampler and site and the search-against-decoder ratio."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # make test-fast leaves these out; CI runs them

ROOT = Path(__file__).resolve().parents[2]


def test_the_search_benchmark_runs_quick():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "search_speed.py"), "--quick", "--threads", "1"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("counting", "addition", "ioi"))]
    assert len(rows) == 12 and {r.split()[3] for r in rows} == {"decoder", "search"}
    assert done.stdout.count("search / decoder:") == 6
