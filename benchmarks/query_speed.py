"""End-to-end InversionView query speed on the bundled models (sample, re-run, distances, ranking).

    python benchmarks/query_speed.py [--repeats 5] [--threads N]

Prints, per model: seconds per 1,024-candidate query (median), candidates per second, time to the
first streamed chunk, and the arithmetic floor the decoder's size implies on this CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUERIES = {"counting": ("Baiaigiaaggi|g:3", "x1.post", ":"), "addition": ("B615+861=1476", "x1.post", "A2")}


def matmul_gflops(torch, seconds: float = 1.0) -> float:
    """Measured fp32 matrix-product speed of this machine (what the floor is computed from)."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 512 ** 3 * n / (time.perf_counter() - t0) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=1024)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--models", nargs="+", default=list(QUERIES), choices=list(QUERIES))
    parser.add_argument("--no-colour", action="store_true", help="leave out the prob-diff colouring pass")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="the decoder copy that samples (distances are always fp32)")
    args = parser.parse_args()

    from engine.decoder.model import flops_per_token
    from engine.query.run import load_inverter, run_query
    from engine.query.types import QueryOptions
    from engine.runtime import torch

    if args.threads:
        from engine.threads import apply_threads

        apply_threads(args.threads)
    gflops = matmul_gflops(torch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), matmul {gflops:.0f} GFLOP/s fp32")
    for name in args.models:
        text, site, position = QUERIES[name]
        inv = load_inverter(name, precision=args.precision)
        colour = not args.no_colour
        run_query(inv, text, site, position, QueryOptions(candidates=args.candidates, colour=colour))  # warm-up
        runs = [run_query(inv, text, site, position, QueryOptions(candidates=args.candidates, seed=i, colour=colour))
                for i in range(args.repeats)]
        secs = statistics.median(r.seconds for r in runs)
        first = statistics.median(r.first_chunk_seconds for r in runs)
        r = runs[0]
        mean_len = sum(len(s.text) * s.multiplicity for s in r.samples) / r.candidates_done
        floor = flops_per_token(inv.decoder.cfg) * mean_len * args.candidates / (gflops * 1e9)
        print(f"{name:<9} colour {'on ' if colour else 'off'} {secs:.3f} s per query, "
              f"{args.candidates / secs:,.0f} candidates/s, "
              f"first chunk {first * 1000:.0f} ms; decoder {inv.decoder.cfg.describe()}, "
              f"sampling in {inv.sampling_decoder.tok_emb.weight.dtype}, mean sample {mean_len:.1f} tokens, "
              f"decoder floor {floor * 1000:.0f} ms; {r.summary()}")


if __name__ == "__main__":
    main()
