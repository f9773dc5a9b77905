"""How long do the engine's imports hold up another thread? A fresh interpreter imports the engine
on a helper thread while the main thread, standing in for the GUI, ticks every 5 ms; a gap beyond
the tick is a stall the window would show. Goal (2-core CPU): no stall over 50 ms.

    python benchmarks/import_stalls.py            # plain imports, then engine.imports.import_engine
    python benchmarks/import_stalls.py --runs 3

"plain" imports the same modules the usual way (what the app did before engine/imports.py);
"import_engine" loads libtorch outside the GIL and pauses collection while importing.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 50

PROBE = """
import json, sys, threading, time
sys.setswitchinterval(0.0005)  # as the app sets it (app/launch.py)
from engine.imports import ENGINE_MODULES, import_engine
mode = sys.argv[1]

def work():
    if mode == "plain":
        import importlib
        for name in ENGINE_MODULES:
            importlib.import_module(name)
    else:
        import_engine()

gaps, thread = [], threading.Thread(target=work)
start = last = time.perf_counter()
thread.start()
while thread.is_alive():
    time.sleep(0.005)
    now = time.perf_counter()
    gaps.append((now - last) * 1000 - 5)
    last = now
print(json.dumps({"seconds": time.perf_counter() - start, "longest": max(gaps), "over": sum(g > 50 for g in gaps)}))
"""


def one(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the probe failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for mode in ("plain", "import_engine"):
        runs = [one(mode) for _ in range(args.runs)]
        worst = max(r["longest"] for r in runs)
        print(f"{mode:>13}: imports {statistics.median(r['seconds'] for r in runs):.1f} s (median of {args.runs}); "
              f"longest stall {worst:.0f} ms (median {statistics.median(r['longest'] for r in runs):.0f}); "
              f"stalls over {GOAL_MS} ms per run: {[r['over'] for r in runs]} "
              f"(goal <= {GOAL_MS}: {'met' if worst <= GOAL_MS else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
