"""Opening a real-sized text model from a Hugging Face folder, and its flow graph.

    python benchmarks/text_model.py [--layers 12 --heads 12 --d-model 768] [--repeats 3]

Builds a GPT-2-small-sized folder here with tools/make_text_model.py (random weights, 50,257-token
vocabulary, a byte-level tokenizer trained on the spot), then times, in this process: the
imports; opening and loading it the way the studio does (find_model + load_probed: the bridge
boots it and applies the weight processing); the flow graph of a 20-token input. Goals on 2
cores: open <= 5 s after imports, flow graph <= 2 s. Resident memory is printed after loading
and after the flow graph. GPT-2 XL (48 layers, 25 heads, d_model 1600) is estimated from the
measured figures by parameter count.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
OPEN_GOAL_S, FLOW_GOAL_S = 5.0, 2.0
PROMPT = "When Mary and John went to the store, John gave a drink to her friend at the"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpt2_params(layers: int, d: int, vocab: int = 50257, ctx: int = 1024) -> int:
    return vocab * d + ctx * d + layers * (12 * d * d + 13 * d)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch  # noqa: F401  (timed: the imports every session pays)
    import transformers  # noqa: F401

    import engine.runtime  # noqa: F401  (torch, transformer_lens)
    from engine.threads import apply_threads

    apply_threads(with_gui=False)
    imports = time.perf_counter() - t0
    scratch = Path(tempfile.mkdtemp(prefix="ivs-bench-text-"))
    try:
        return measure(args, scratch / "gpt2-sized", imports)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # half a gigabyte of random weights


def measure(args, folder: Path, imports: float) -> int:
    from engine.flow.build import flow_for_query
    from engine.flow.prune import influence_index, prune_by_influence
    from engine.store.folders import find_model, load_probed
    from tools.make_text_model import build

    build(folder, args.layers, args.heads, args.d_model)
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    print(f"folder: {folder} ({size_mb:.0f} MB), {args.layers} layers x {args.heads} heads, d_model {args.d_model}")
    print(f"imports (torch, transformers, transformer_lens): {imports:.2f} s; rss {rss_mb():.0f} MB")

    t = time.perf_counter()
    model = load_probed(find_model(str(folder)))
    opened = time.perf_counter() - t
    print(f"open + load (bridge boot, weight processing): {opened:.2f} s (goal {OPEN_GOAL_S} s); "
          f"rss {rss_mb():.0f} MB")

    ids = model.task.parse_query(PROMPT)[:20]
    text = model.task.query_text(ids)
    n = len(model.task.parse_query(text))
    times = []
    for _ in range(args.repeats + 1):
        t = time.perf_counter()
        graph = flow_for_query(model, text)
        times.append(time.perf_counter() - t)
    flow = statistics.median(times[1:])
    print(f"flow graph, {n} tokens: median {flow:.2f} s of {args.repeats} (first {times[0]:.2f} s; "
          f"goal {FLOW_GOAL_S} s); {len(graph.nodes)} nodes, {len(graph.edges)} edges; rss {rss_mb():.0f} MB")
    t = time.perf_counter()
    index = influence_index(graph)  # the app makes this on the flow thread, once per graph
    indexed = time.perf_counter()
    moves = []
    for share in (0.5, 0.6, 0.7, 0.8):  # what the GUI thread does per move of the share slider
        t1 = time.perf_counter()
        pruned = prune_by_influence(graph, node_share=share, index=index)
        moves.append(time.perf_counter() - t1)
    print(f"pruning by influence: the graph's influence index {(indexed - t) * 1000:.0f} ms (flow thread), "
          f"then {max(moves) * 1000:.1f} ms per share (GUI thread, longest of {len(moves)}); {pruned.summary()}")
    small, xl = gpt2_params(args.layers, args.d_model), gpt2_params(48, 1600)
    print(f"GPT-2 XL estimate (x{xl / small:.1f} parameters): open ~{opened * xl / small:.0f} s, "
          f"flow graph ~{flow * xl / small:.0f} s, weights ~{xl * 4 / 2**30:.1f} GiB in float32")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
