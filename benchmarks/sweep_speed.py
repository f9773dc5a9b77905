"""The information map's speed: InversionView at every (site, position) of one input.

    python benchmarks/sweep_speed.py [--threads N] [--candidates 256] [--models counting addition]

Prints, per model: nodes mapped, seconds for the whole map (goal: the counting diagram, 9 sites x
its positions, at 256 candidates per node, within 30 s on 2 cores), seconds per node, and how
many nodes share a feature of the input. Run on idle cores: the figure is a wall-clock time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INPUTS = {"counting": "Baiaigiaaggi|g:3", "addition": "B615+861=1476"}
GOAL_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int)
    parser.add_argument("--candidates", type=int, default=256)
    parser.add_argument("--models", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    args = parser.parse_args()

    from engine.explain.sweep import NodeCache, map_nodes, run_map, sweep_options
    from engine.query.run import load_inverter
    from engine.runtime import torch

    if args.threads:
        from engine.threads import apply_threads

        apply_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for name in args.models:
        inv = load_inverter(name)
        task = inv.probed.task
        text = INPUTS[name]
        ids = task.parse_query(text)
        nodes = map_nodes(inv, ids)
        options = sweep_options(task, candidates=args.candidates)
        run_map(inv, text, nodes[:3], options, cache=NodeCache())  # warm-up: kernel set-up per shape
        t0 = time.perf_counter()
        m = run_map(inv, text, nodes, options, cache=NodeCache())
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        cache = NodeCache()
        run_map(inv, text, nodes, options, cache=cache)
        again = time.perf_counter()
        run_map(inv, text, nodes, options, cache=cache)
        reopen = time.perf_counter() - again
        shared = sum(1 for r in m.rows if r.top is not None and r.top.verdict == "shared")
        sites = len({s.short for s, _ in nodes})
        goal = f" (goal {GOAL_S:.0f} s: {'met' if seconds <= GOAL_S else 'missed'})" if name == "counting" else ""
        print(f"{name:<9} {len(nodes)} nodes ({sites} sites x {len(nodes) // sites} positions) x {args.candidates} "
              f"candidates: {seconds:.1f} s{goal}, {seconds / len(nodes) * 1000:.0f} ms per node; reopened from the "
              f"cache in {reopen * 1000:.0f} ms; {shared} nodes share a feature (second run {again - t1:.1f} s)")


if __name__ == "__main__":
    main()
