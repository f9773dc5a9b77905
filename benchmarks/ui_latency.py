"""Does the GUI thread stay responsive while a query runs? Measured in the real window, offscreen.

A QTimer ticks every 5 ms on the GUI thread; any gap between ticks beyond that is a stall of the
event loop (the user would feel it as a frozen window). The script loads a model, clicks Run
for a 1,024-candidate query, and reports the longest stall and the time from Run to the first
results painted in the table, then starts a long query, clicks Cancel once the first results
are in and reports how long the partial result took to arrive, and last closes the window in the
middle of a run. Goals (2-core CPU): no stall over 30 ms, first rows within 300 ms, Cancel answered
within 200 ms, the window closed (the engine process ended) within 1 s; killed mid-query, the engine
process is back with the model reloaded within 10 s. The engine runs in its own process, as in the app
(app/workers/engine_client.py); --fake runs the tests' fake engine in a thread over the same protocol.

    python benchmarks/ui_latency.py                  # bundled 'counting' model, real engine
    python benchmarks/ui_latency.py --model addition --runs 3
    python benchmarks/ui_latency.py --fake           # the test suite's fake engine (harness check)

Each run also reports when the result was complete, when the rows on screen had their token
colours and when every sample had them (the colours come on demand after the result,
app/results/colouring.py).
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

TICK_MS = 5
STALL_GOAL_MS = 30
RESTART_GOAL_S = 10.0
FIRST_PAINT_GOAL_MS = 300
CANCEL_GOAL_MS = 200
CLOSE_GOAL_MS = 1000
LONG_RUN_CANDIDATES = 65536  # long enough that Cancel and close land in the middle of the run


class StallProbe:
    """Records the gaps between ticks of a fast GUI-thread timer."""

    def __init__(self):
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self._last = None

    def start(self) -> None:
        self.gaps, self._last = [], time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000 - TICK_MS)
        self._last = now

    def longest(self) -> float:
        return max(self.gaps, default=0.0)

    def over(self, ms: float) -> int:
        return sum(g > ms for g in self.gaps)


def wait_for(signal, timeout_s: float):
    """Spin the event loop until the signal fires; its arguments, or None on timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    got = []
    loop = QEventLoop()

    def on(*args):
        got.append(args)
        loop.quit()

    signal.connect(on)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(on)
    return got[0] if got else None


def make_window(args):
    from app.launch import make_application
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore
    backend = None  # the engine process
    if args.fake:
        os.environ["INVERSIONVIEW_DATA_DIR"] = tempfile.mkdtemp(prefix="ivs-bench-data-")
        from tests.app.fakes import FakeEngine, make_fake_models

        make_fake_models()
        backend = FakeEngine(chunk_delay=0.02).backend()
        args.model = f"fake-{args.model}"
    app = make_application()
    store = SettingsStore()
    store.save(AppSettings(model=args.model, candidates=args.candidates, seed=args.seed))
    window = MainWindow(store, backend=backend, save_settings=False)
    window.resize(1480, 920)
    window.show()
    from app.launch import settle_heap

    settle_heap()  # as app.launch does once the window is built
    return app, window


def measure_run(app, window, probe: StallProbe, timeout_s: float) -> dict:
    first_paint = []
    t_run = [0.0]

    def on_paint():
        if not first_paint and window.results.table_model.rowCount() > 0:
            first_paint.append(time.perf_counter() - t_run[0])

    window.results.table.painted.connect(on_paint)
    probe.start()
    t_run[0] = time.perf_counter()
    window.run_bar.run_button.click()  # the real button
    finished = wait_for(window.engine.runFinished, timeout_s)
    complete = time.perf_counter() - t_run[0]
    if finished is None:
        raise SystemExit(f"no result within {timeout_s:.0f} s")
    # the token colours: on demand, the rows on screen first (app/results/colouring.py)
    colouring = window.colouring
    visible = spin_until(app, lambda: not colouring.visible_missing(), timeout_s) - t_run[0]
    shown = window.results.result()
    coloured = spin_until(app, lambda: not colouring.busy() and all(s.prob_diff for s in shown.samples),
                          timeout_s) - t_run[0]
    # keep the probe running through the final repaint
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
    probe.stop()
    window.results.table.painted.disconnect(on_paint)
    result = finished[0]
    return {"seconds": result.seconds, "first_chunk": result.first_chunk_seconds, "complete": complete,
            "visible_coloured": visible, "all_coloured": coloured,
            "first_paint": first_paint[0] if first_paint else float("nan"), "longest": probe.longest(),
            "over_goal": probe.over(STALL_GOAL_MS), "ticks": len(probe.gaps), "summary": result.summary()}


def spin_until(app, done, timeout_s: float) -> float:
    """Process events until done() holds; the time it did (perf_counter), or NaN on timeout."""
    end = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > end:
            return float("nan")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter()


def start_long_run(window, timeout_s: float) -> None:
    window.options_bar.candidates.setValue(LONG_RUN_CANDIDATES)
    window.run_bar.run_button.click()
    if wait_for(window.engine.runPartial, timeout_s) is None:
        raise SystemExit(f"no partial result within {timeout_s:.0f} s")


def measure_cancel(window, timeout_s: float) -> tuple[float, object]:
    """Milliseconds from clicking Cancel to the partial result arriving, and that result."""
    start_long_run(window, timeout_s)
    t0 = time.perf_counter()
    window.run_bar.cancel_button.click()
    finished = wait_for(window.engine.runFinished, timeout_s)
    if finished is None:
        raise SystemExit("Cancel was not answered")
    return (time.perf_counter() - t0) * 1000, finished[0]


def measure_restart(app, window, probe: StallProbe, timeout_s: float) -> tuple[float, float]:
    """Seconds from killing the engine mid-query to the model reloaded in a new one, and the longest stall."""
    start_long_run(window, timeout_s)
    probe.start()
    t0 = time.perf_counter()
    window.engine.kill_engine()
    if wait_for(window.engine.modelLoaded, timeout_s) is None:
        raise SystemExit("the engine did not come back")
    seconds = time.perf_counter() - t0
    probe.stop()
    return seconds, probe.longest()


def measure_close(window, timeout_s: float) -> float:
    """Milliseconds that closing the window takes in the middle of a run (the engine process ends)."""
    start_long_run(window, timeout_s)
    t0 = time.perf_counter()
    window.close()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="counting", help="model name (default: the bundled 'counting')")
    parser.add_argument("--candidates", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=2, help="queries to time (the first is cold)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--fake", action="store_true", help="use the tests' fake engine (no torch)")
    args = parser.parse_args()

    app, window = make_window(args)
    probe = StallProbe()
    probe.start()
    t0 = time.perf_counter()
    entry = window.start()
    if entry is None:
        print("error: no model to load", file=sys.stderr)
        return 2
    loaded = wait_for(window.engine.modelLoaded, args.timeout)
    probe.stop()
    if loaded is None:
        print(f"error: model {args.model!r} did not load: {window.picker.state.text()}", file=sys.stderr)
        window.close()
        return 2
    print(f"model {entry.name} ({entry.path}) loaded in {time.perf_counter() - t0:.1f} s; "
          f"longest GUI stall while loading {probe.longest():.0f} ms")

    worst_stall, worst_paint = 0.0, 0.0
    for i in range(args.runs):
        m = measure_run(app, window, probe, args.timeout)
        worst_stall, worst_paint = max(worst_stall, m["longest"]), max(worst_paint, m["first_paint"])
        print(f"run {i + 1} ({'cold' if i == 0 else 'warm'}): {args.candidates:,} candidates in {m['seconds']:.2f} s; "
              f"first results painted {m['first_paint'] * 1000:.0f} ms after Run (engine's first chunk "
              f"{m['first_chunk'] * 1000:.0f} ms); longest event-loop stall {m['longest']:.1f} ms, "
              f"{m['over_goal']} stall(s) over {STALL_GOAL_MS} ms in {m['ticks']} ticks")
        print(f"    result complete {m['complete'] * 1000:.0f} ms after Run; rows on screen coloured after "
              f"{m['visible_coloured'] * 1000:.0f} ms, every sample after {m['all_coloured'] * 1000:.0f} ms "
              "(on demand)")
        print(f"    {m['summary']}")
    cancel_ms, partial = measure_cancel(window, args.timeout)
    print(f"cancel: partial result ({partial.candidates_done:,} of {LONG_RUN_CANDIDATES:,} candidates) "
          f"arrived {cancel_ms:.0f} ms after Cancel (goal <= {CANCEL_GOAL_MS}: "
          f"{'met' if cancel_ms <= CANCEL_GOAL_MS else 'NOT met'})")
    if not args.fake:
        restart_s, stall = measure_restart(app, window, probe, args.timeout)
        print(f"engine killed mid-query: back with the model reloaded after {restart_s:.1f} s (goal <= "
              f"{RESTART_GOAL_S:g}: {'met' if restart_s <= RESTART_GOAL_S else 'NOT met'}); history kept "
              f"({window.history.list.count()} entries); longest stall meanwhile {stall:.1f} ms")
        worst_stall = max(worst_stall, stall)
    heavy = sorted(m for m in ("torch", "transformers", "transformer_lens") if m in sys.modules)
    print(f"heavy modules in the window's process: {heavy or 'none'}")
    engine_pid = window.engine.engine_pid
    close_ms = measure_close(window, args.timeout)
    ended = not window.engine.engine_alive
    print(f"close during a run: {close_ms:.0f} ms, engine {'ended' if ended else 'STILL RUNNING'} (pid {engine_pid}) "
          f"(goal <= {CLOSE_GOAL_MS}: {'met' if close_ms <= CLOSE_GOAL_MS and ended else 'NOT met'})")
    stall_ok = worst_stall <= STALL_GOAL_MS
    paint_ok = worst_paint * 1000 <= FIRST_PAINT_GOAL_MS
    print(f"longest stall {worst_stall:.1f} ms (goal <= {STALL_GOAL_MS}: {'met' if stall_ok else 'NOT met'}); "
          f"first results {worst_paint * 1000:.0f} ms (goal <= {FIRST_PAINT_GOAL_MS}: "
          f"{'met' if paint_ok else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
