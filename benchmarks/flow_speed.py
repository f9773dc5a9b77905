"""How long one flow graph takes (docs/design.md §4), median of repeated runs.

    python benchmarks/flow_speed.py [--repeats N] [--threads N] [--exact]

1. the counting model on "Baiaigiaaggi|g:3" (the trained bundled model when present, else
   random weights): goal <= 100 ms on 2 cores;
2. a GPT-2-small-sized model (12 layers, 12 heads, d_model 768, d_mlp 3072, vocab 50,257)
   with random weights, built locally, on a 20-token input: goal <= 2 s on 2 cores.

The forward pass alone is timed too, so the flow graph's own share is visible. Other work on
the machine (training, say) slows both; the load average is printed with the figures. On a
busy machine torch's OpenMP threads spin waiting for each other and every figure with 2
threads grows several-fold: compare `--threads 1`, or set OMP_WAIT_POLICY=PASSIVE.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_seconds(fn, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def counting_model():
    from engine.probed.model import PAPER_CONFIGS, build_probed
    from engine.store.folders import BUNDLED_DIR, load_probed

    folder = BUNDLED_DIR / "counting"
    if (folder / "probed.safetensors").is_file():
        return load_probed(str(folder)), "trained bundled model"
    return build_probed(PAPER_CONFIGS["counting"], seed=0), "random weights (no bundled model yet)"


def gpt2_sized_bridge():
    from engine.runtime import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(d_model=768, d_head=64, n_heads=12, n_layers=12, n_ctx=64, d_vocab=50257,
                                  d_mlp=3072, act_fn="gelu_new", normalization_type="LN", seed=0)
    bridge = TransformerBridge.boot_native(cfg, device="cpu")
    bridge.eval()
    # random weights leave the final norm's bias at 0; give it one so the benchmark pays for the
    # logit-lens offset a real GPT-2 has (flow_readout.py's beta)
    import torch

    with torch.no_grad():
        bridge.ln_final.bias.copy_(torch.randn(768, generator=torch.Generator().manual_seed(1)) * 0.1)
    return bridge


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--exact", action="store_true", help="float32 vocabulary sweep (no bfloat16)")
    args = parser.parse_args()

    from engine.flow.build import build_flow, flow_for_query
    from engine.runtime import torch

    if args.threads:
        from engine.threads import apply_threads

        apply_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")

    model, what = counting_model()
    text = "Baiaigiaaggi|g:3"
    med, times = median_seconds(lambda: flow_for_query(model, text), args.repeats, warmup=2)
    graph = flow_for_query(model, text)
    print(f"counting flow graph ({what}, {len(graph.tokens)} tokens, {len(graph.nodes)} nodes, "
          f"{len(graph.edges)} edges): median {med * 1000:.1f} ms over {len(times)} runs "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}); goal <= 100 ms")

    bridge = gpt2_sized_bridge()
    ids = torch.randint(0, 50257, (20,), generator=torch.Generator().manual_seed(0)).tolist()
    vocab = [f"<{i}>" for i in range(50257)]
    fast = False if args.exact else None
    tokens = torch.tensor([ids])

    def forward():
        with torch.inference_mode():
            bridge(tokens)

    fwd, _ = median_seconds(forward, max(3, args.repeats // 2))
    med, times = median_seconds(lambda: build_flow(bridge, ids, vocab, fast=fast), args.repeats)
    graph = build_flow(bridge, ids, vocab, fast=fast)
    print(f"GPT-2-sized flow graph (12 layers x 12 heads, d_model 768, vocab 50257, 20 tokens, "
          f"{len(graph.nodes)} nodes, {len(graph.edges)} edges, "
          f"{'float32' if args.exact else 'bfloat16 sweep + exact rescoring'}): median {med:.2f} s over "
          f"{len(times)} runs (min {min(times):.2f}, max {max(times):.2f}); of which the forward pass alone "
          f"{fwd:.2f} s; goal <= 2 s")
    print(f"load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
