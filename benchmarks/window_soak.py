"""Memory over a session in the window: many queries cycling sites and positions, the engine in its process.

Opens the window offscreen on the bundled counting model, runs `--queries` queries through the
window (Run, as a user clicks it), moving the site and position each time, and prints the
resident memory of the window's process and of the engine's every `--every` queries; then kills
the engine and prints its new process's memory once the model is back. Goals (2-core CPU): the
window's memory flat after warm-up (within 10% of the reading at --warm-up queries); a restart
returns the engine's memory.

    python benchmarks/window_soak.py                    # 1,000 queries of 64 candidates
    python benchmarks/window_soak.py --queries 200 --every 50
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["INVERSIONVIEW_CONFIG_DIR"] = tempfile.mkdtemp(prefix="ivs-bench-config-")  # never the user's
GROWTH_GOAL = 0.10

from benchmarks.ui_latency import wait_for  # noqa: E402

SITES = ("x0.post", "a0.0", "x0.mid", "m0", "x1.post", "a1.0", "x1.mid", "m1")


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--warm-up", type=int, default=100, help="queries before the reading growth is measured from")
    args = parser.parse_args()
    if not 1 <= args.warm_up < args.queries:
        print("error: --warm-up must be at least 1 and below --queries", file=sys.stderr)
        return 2

    from app.launch import make_application
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore

    app = make_application()
    store = SettingsStore()
    store.save(AppSettings(model="counting", candidates=args.candidates, sampler="decoder"))
    window = MainWindow(store, save_settings=False)
    window.show()
    window.start()
    if wait_for(window.engine.modelLoaded, 300) is None:
        print("error: the model did not load", file=sys.stderr)
        return 2
    me, base = os.getpid(), None
    t0 = time.perf_counter()
    for i in range(1, args.queries + 1):
        labels = window.editor.labels()
        positions = [p for p, label in enumerate(labels) if label not in ("B", "E")]
        window.set_target(SITES[i % len(SITES)], positions[(i * 7) % len(positions)])
        window.run_bar.run_button.click()
        if wait_for(window.engine.runFinished, 120) is None:
            print(f"error: query {i} did not finish", file=sys.stderr)
            return 2
        app.processEvents()
        if i == args.warm_up:
            base = resident_mb(me)
        if i % args.every == 0 or i == args.queries:
            print(f"{i:5d} queries ({time.perf_counter() - t0:.0f} s): window {resident_mb(me):.0f} MB, "
                  f"engine {resident_mb(window.engine.engine_pid):.0f} MB, history {window.history.list.count()}")
    end = resident_mb(me)
    growth = (end - base) / base
    print(f"window after warm-up ({args.warm_up} queries): {base:.0f} -> {end:.0f} MB ({growth:+.1%}; goal within "
          f"{GROWTH_GOAL:.0%}: {'met' if abs(growth) <= GROWTH_GOAL else 'NOT met'})")
    before = resident_mb(window.engine.engine_pid)
    window.engine.kill_engine()
    if wait_for(window.engine.modelLoaded, 300) is None:
        print("error: the engine did not come back", file=sys.stderr)
        return 2
    print(f"engine restart: {before:.0f} MB before, {resident_mb(window.engine.engine_pid):.0f} MB in the new process "
          f"with the model reloaded")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
