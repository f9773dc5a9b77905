"""A long session: does memory stay flat over many queries, and how fast is Cancel answered?

Runs N queries (256 candidates, with the prob-diff colouring, as the app's engine thread runs
them) on one loaded model and prints the process's resident memory every `--every` queries;
then starts `--cancels` 1,024-candidate queries, cancels each once its first chunk is in (at a
random delay within the run) and prints the time from the cancel request to the partial result.
Goals (2-core CPU): resident memory flat after warm-up (within 10%), every cancel within 200 ms.

    python benchmarks/soak.py                      # 1,000 queries, 50 cancels
    python benchmarks/soak.py --queries 200 --cancels 20
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RSS_GOAL = 0.10  # growth after warm-up
CANCEL_GOAL_MS = 200
QUERY = ("Baiaigiaaggi|g:3", "x1.post", ":")


def resident_mb() -> float:
    """Resident set size from /proc (Linux); the peak from getrusage elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cancel_once(inv, run_query, options, delay_s: float) -> float:
    """Milliseconds from setting the cancel event (delay_s after the first chunk) to run_query returning."""
    cancel, first, done = threading.Event(), threading.Event(), {}

    def work():
        done["result"] = run_query(inv, *QUERY, options, on_chunk=lambda chunk: first.set(), cancel=cancel)
        done["at"] = time.perf_counter()

    thread = threading.Thread(target=work)
    thread.start()
    first.wait(60)
    time.sleep(delay_s)
    asked = time.perf_counter()
    cancel.set()
    thread.join(120)
    return (done.get("at", asked) - asked) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="counting")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--cancels", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np

    from engine.query.run import load_inverter, run_query
    from engine.query.types import QueryOptions
    from engine.threads import apply_threads

    apply_threads(args.threads)
    inv = load_inverter(args.model)
    print(f"model {args.model}; {args.queries:,} queries of 256 candidates with colouring; "
          f"resident memory every {args.every}")
    marks = [(0, resident_mb())]
    print(f"  after {0:>5} queries: {marks[0][1]:7.1f} MB", flush=True)
    for i in range(1, args.queries + 1):
        run_query(inv, *QUERY, QueryOptions(candidates=256, seed=i, colour=True))
        if i % args.every == 0:
            marks.append((i, resident_mb()))
            print(f"  after {i:>5} queries: {marks[-1][1]:7.1f} MB", flush=True)
    if len(marks) >= 3:
        warm, last = marks[1][1], marks[-1][1]
        growth = (last - warm) / warm
        print(f"growth after warm-up ({marks[1][0]} -> {marks[-1][0]} queries): {growth:+.1%} "
              f"(goal within {RSS_GOAL:.0%}: {'met' if abs(growth) <= RSS_GOAL else 'NOT met'})")

    rng = np.random.default_rng(0)
    latencies = [cancel_once(inv, run_query, QueryOptions(candidates=1024, seed=1000 + k, colour=True),
                             float(rng.uniform(0.0, 0.3))) for k in range(args.cancels)]
    if latencies:
        q = statistics.quantiles(latencies, n=10) if len(latencies) >= 10 else [float("nan")] * 9
        print(f"cancel over {len(latencies)} runs: median {statistics.median(latencies):.0f} ms, p90 {q[8]:.0f} ms, "
              f"max {max(latencies):.0f} ms (goal max <= {CANCEL_GOAL_MS}: "
              f"{'met' if max(latencies) <= CANCEL_GOAL_MS else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
