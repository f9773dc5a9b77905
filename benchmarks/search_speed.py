"""The local preimage search: its speed at GPT-2 small's shape, and against the decoder.

    python benchmarks/search_speed.py [--threads 1] [--rows 768] [--skip-text] [--skip-bundled]

1. A GPT-2-small-shaped folder (random weights, 12 layers, d_model 768, a 50,257-token vocabulary;
   tools/make_text_model.py): a 768-row search at a mid-layer head (a6.0) on a 22-token prompt.
   Prints the whole search's time and the time to its first rows (goals on 2 cores: 10 s and 2 s).
2. Side by side on the bundled models, same candidate budget: in-epsilon distinct samples per
   second of the search and of the decoder, at the sites the search was measured on.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPT = "When Mary and John went to the store, John gave a drink to her friend at the old"
SIDE_BY_SIDE = [("counting", "Baiaigiaaggi|g:3", "x1.post", ":"), ("counting", "Baiaigiaaggi|g:3", "m1", ":"),
                ("counting", "Baiaigiaaggi|g:3", "a0.0", ":"), ("addition", "B615+861=1476", "x1.post", "A2"),
                ("ioi", "After Erin and Justin went to the house, Erin gave a ring to Justin", "x3.post", "END"),
                ("ioi", "After Erin and Justin went to the house, Erin gave a ring to Justin", "a3.3", "END")]


def text_model(args) -> None:
    from engine.query.run import load_inverter, run_query
    from engine.query.types import default_options
    from engine.store.folders import find_model
    from tools.make_text_model import build

    scratch = Path(tempfile.mkdtemp(prefix="ivs-bench-search-"))
    try:
        folder = scratch / "gpt2-sized"
        build(folder, 12, 12, 768)
        inv = load_inverter(find_model(str(folder)), decoder_optional=True)
        task = inv.probed.task
        ids = task.parse_query(PROMPT)[:22]
        text = task.query_text(ids)
        options = default_options(task, candidates=args.rows, sampler="search")
        run_query(inv, text, "a6.0", len(ids) - 1, default_options(task, candidates=64, sampler="search"))  # warm-up
        runs, cpu = [], []
        for _ in range(args.repeats):
            c = time.process_time()
            runs.append(run_query(inv, text, "a6.0", len(ids) - 1, options))
            cpu.append(time.process_time() - c)
        total = statistics.median(r.seconds for r in runs)
        first = statistics.median(r.first_chunk_seconds for r in runs)
        r = runs[-1]
        # the CPU seconds too: on shared cores the wall time tracks the load, the CPU time much less
        print(f"GPT-2-small shape, {len(ids)} tokens, a6.0 at the last token: {r.candidates_done} rows in "
              f"{total:.1f} s median of {args.repeats} (goal 10 s; {statistics.median(cpu):.1f} CPU s), first rows "
              f"after {first:.2f} s (goal 2 s); {r.in_epsilon_count} within epsilon {r.epsilon:g}; "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def side_by_side(args) -> None:
    from engine.query.run import load_inverter, run_query
    from engine.query.types import default_options

    print(f"{'model':<9} {'site':<8} {'at':<4} {'sampler':<8} {'rows':>5} {'in eps':>7} {'seconds':>8} "
          f"{'in-eps/s':>9}")
    models = {}
    for name, text, site, position in SIDE_BY_SIDE:
        inv = models.get(name) or models.setdefault(name, load_inverter(name))
        task = inv.probed.task
        rates = {}
        for sampler in ("decoder", "search"):
            options = default_options(task, candidates=args.rows, sampler=sampler, colour=False)
            r = run_query(inv, text, site, position, options)
            within = sum(1 for s in r.samples if s.in_epsilon)
            rates[sampler] = within / r.seconds
            print(f"{name:<9} {site:<8} {position:<4} {sampler:<8} {r.candidates_done:>5} {within:>7} "
                  f"{r.seconds:>8.2f} {rates[sampler]:>9.1f}")
        print(f"{'':<22} search / decoder: {rates['search'] / max(rates['decoder'], 1e-9):.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--skip-text", action="store_true")
    ap.add_argument("--skip-bundled", action="store_true")
    ap.add_argument("--quick", action="store_true", help="a small run that checks the benchmark still works")
    args = ap.parse_args()
    from engine.threads import apply_threads

    apply_threads(args.threads) if args.threads else apply_threads(with_gui=False)
    if args.quick:
        args.rows, args.repeats, args.skip_text = 64, 1, True
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); load average {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    if not args.skip_text:
        text_model(args)
    if not args.skip_bundled:
        side_by_side(args)
    print(f"done in {time.perf_counter() - t:.0f} s; load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
