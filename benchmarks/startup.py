"""How soon does the window show? A fresh Python process, offscreen, from interpreter start to the
window's first processed paint, while its engine process (started with the window) is still
importing torch. Goal (2-core CPU): 1 s.

    python benchmarks/startup.py            # five cold starts
    python benchmarks/startup.py --runs 10
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 1.0

SHOW = """
import time
from app.launch import make_application
from app.main_window import MainWindow
app = make_application()
w = MainWindow()  # starts the engine process
w.show()
app.processEvents()
print(time.time())
import os
os._exit(0)
"""


def one_start() -> float:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               INVERSIONVIEW_CONFIG_DIR=tempfile.mkdtemp(prefix="ivs-bench-config-"),
               INVERSIONVIEW_DATA_DIR=tempfile.mkdtemp(prefix="ivs-bench-data-"))
    t0 = time.time()
    done = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the window did not start: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.strip().splitlines()[-1]) - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = [one_start() for _ in range(args.runs)]
    median = statistics.median(times)
    print(f"window shown after {median:.2f} s (median of {args.runs}; min {min(times):.2f}, max {max(times):.2f}); "
          f"goal <= {GOAL_S:g} s: {'met' if median <= GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
