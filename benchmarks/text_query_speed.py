"""One InversionView query on a GPT-2-small-sized text model, and decoder training at that size.

    python benchmarks/text_query_speed.py [--layers 12 --heads 12 --d-model 768] [--candidates 768]
                                         [--threads 2] [--skip-training]

Builds a GPT-2-small-sized Hugging Face folder here (tools/make_text_model.py: random weights,
50,257-token vocabulary) and gives it a decoder of the paper's text size (d_model 256, 2 layers,
4 heads, the 157 paper sites, vocabulary 50,259) with random weights: such a decoder almost never
draws its end token, so every sample runs to the decoder's full length of 40, the worst case.
Then it times a 20-token query at a layer-9 head with the paper's text schedule (768 candidates,
1 - cosine), the way `python main.py query` runs it: seconds per query, seconds to the first
streamed rows, and where the time goes (sampling: decoder steps, vocabulary product, the draw;
re-running the distinct samples through the model up to layer 9). The arithmetic floor is the
query's multiply-adds at this machine's measured matrix-product speed. The paper's code took
about 105 s for such a query on a 2-core CPU (57 s sampling, 48 s re-running); goals: at least
5x faster (21 s), first rows within 3 s. Last, decoder-training pairs per second at this size.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
PAPER_SECONDS = 105.0
QUERY = "When Mary and John went to the store, John gave a drink to her friend at the"  # about 20 tokens


def product_speed(dtype, n: int = 1024) -> float:
    """Multiply-adds x 2 per second of one (768 x n) by (n x 50k)-like product at `dtype`."""
    import torch

    a = torch.randn(768, 256).to(dtype)
    b = torch.randn(256, 50259).to(dtype)
    a @ b
    t0 = time.perf_counter()
    reps = 5
    for _ in range(reps):
        a @ b
    return reps * 2 * 768 * 256 * 50259 / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--candidates", type=int, default=768)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()

    import numpy as np
    import torch

    from engine.decoder.config import DecoderTrainConfig
    from engine.decoder.files import save_decoder
    from engine.decoder.model import ConditionalDecoder, DecoderConfig, flops_per_token
    from engine.decoder.sampling import generate
    from engine.probed.sites import get_site, paper_sites
    from engine.query.run import load_inverter, run_query
    from engine.query.types import default_options
    from engine.store.folders import load_probed, open_folder
    from engine.threads import apply_threads
    from tools.make_text_model import build

    apply_threads(args.threads, with_gui=False)
    tmp = Path(tempfile.mkdtemp(prefix="ivs-textq-"))
    try:
        t0 = time.perf_counter()
        folder = build(tmp / "model", args.layers, args.heads, args.d_model)
        print(f"built a {args.layers}-layer, {args.heads}-head, d_model {args.d_model} GPT-2 folder "
              f"in {time.perf_counter() - t0:.1f} s")
        probed = load_probed(open_folder(folder))
        task = probed.task
        sites = paper_sites(probed.config)
        dcfg = DecoderConfig(d_act=probed.config.d_model, n_sites=len(sites), d_vocab=task.decoder_vocab_size,
                             n_ctx=40, d_model=256, n_layers=2, n_heads=4)
        torch.manual_seed(0)
        save_decoder(folder, ConditionalDecoder(dcfg), [s.id for s in sites], {"command": "benchmark"})
        inv = load_inverter(open_folder(folder), precision=args.precision)
        ids = task.parse_query(QUERY)
        site = get_site(probed.config, f"a{min(9, args.layers - 1)}.{min(3, args.heads - 1)}")
        options = default_options(task, candidates=args.candidates, colour=False)
        print(f"decoder: {dcfg.describe()}, vocabulary {dcfg.d_vocab:,}, {len(sites)} sites, sampling in "
              f"{inv.precision}; query: {len(ids)} tokens at {site.short}, {options.candidates} candidates, "
              f"schedule {options.schedule}, {options.metric}")

        run_query(inv, QUERY, site, len(ids) - 1, default_options(task, candidates=16, colour=False))  # warm-up
        times = []
        for _ in range(2):
            r = run_query(inv, QUERY, site, len(ids) - 1, options)
            times.append((r.seconds, r.first_chunk_seconds))
        best, first = min(times)
        lengths = [len(s.tokens) for s in r.samples]
        print(f"query: {best:.1f} s ({PAPER_SECONDS / best:.1f}x the paper's {PAPER_SECONDS:.0f} s), first rows "
              f"after {first:.2f} s; {len(r.samples)} distinct samples, mean length {np.mean(lengths):.1f}")

        # where the time goes: sampling alone, then re-running the same samples alone
        z = torch.randn(args.candidates, probed.config.d_model)
        gen = torch.Generator().manual_seed(0)
        sampler = inv.sampling_decoder
        temps = torch.ones(args.candidates)
        t0 = time.perf_counter()
        sampled = generate(sampler, z.to(sampler.tok_emb.weight.dtype), torch.zeros(args.candidates, dtype=torch.long),
                           temps, task.bos_id, task.decoder_eos_id, task.decoder_pad_id, generator=gen)
        sampling = time.perf_counter() - t0
        grid = torch.as_tensor(task.model_grid(sampled.numpy()))
        steps = sampled.shape[1] - 1
        reruns = {}
        for name, reader in (("bf16 copy", inv.fast_reader), ("fp32 bridge", inv.reader)):
            if reader is None:
                continue
            t0 = time.perf_counter()
            for rows in grid.split(128):
                reader.read(rows, site)
            reruns[name] = time.perf_counter() - t0
        near = sum(abs(s.distance - options.epsilon) <= 0.02 for s in r.samples)
        print(f"sampling {args.candidates} x {steps} steps: {sampling:.1f} s; re-running them to layer "
              f"{site.layer}: " + ", ".join(f"{v:.1f} s through the {k}" for k, v in reruns.items())
              + f"; {near} samples near epsilon re-checked in fp32")

        # the arithmetic floor: multiply-adds x 2 at this machine's product speed
        dtype = torch.bfloat16 if inv.sampler is not None else torch.float32
        rerun_dtype = torch.bfloat16 if inv.fast_reader is not None else torch.float32
        speed_s, speed_f32 = product_speed(dtype), product_speed(rerun_dtype)
        d, dm = probed.config.d_model, probed.config.d_mlp
        per_layer = 2 * (4 * d * d + 2 * d * dm)
        sample_flops = args.candidates * steps * flops_per_token(dcfg)
        rerun_flops = args.candidates * grid.shape[1] * per_layer * (site.layer + 0.5)
        floor = sample_flops / speed_s + rerun_flops / speed_f32
        print(f"arithmetic: sampling {sample_flops / 1e9:.0f} GFLOP at {speed_s / 1e9:.0f} GFLOP/s ({dtype}), "
              f"re-running {rerun_flops / 1e9:.0f} GFLOP at {speed_f32 / 1e9:.0f} GFLOP/s ({rerun_dtype}): "
              f"floor {floor:.1f} s; the query takes {best / floor:.1f}x the floor")

        if not args.skip_training:
            from engine.decoder.inputs import corpus_inputs
            from engine.decoder.train import train_decoder

            corpus = tmp / "corpus.txt"
            docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
            corpus.write_text("\n".join(p.read_text(encoding="utf-8") for p in docs))
            inputs = corpus_inputs(task, corpus, 40)
            cfg = DecoderTrainConfig(minutes=0, steps=6, batch_size=128, d_model=256, n_layers=2, n_heads=4,
                                     lr=1e-4, check_every_steps=0)
            train_decoder(probed, DecoderTrainConfig(**{**cfg.__dict__, "steps": 1}), tmp / "warm.safetensors",
                          resume=False, inputs=inputs)
            t0 = time.perf_counter()
            _, result = train_decoder(probed, cfg, tmp / "run.safetensors", resume=False, inputs=inputs)
            seconds = time.perf_counter() - t0
            print(f"decoder training at this size: {result.pairs / seconds:.0f} pairs/s (batch {cfg.batch_size}, "
                  f"{len(sites)} sites, windows of 40 tokens; {seconds / cfg.steps:.2f} s per step)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
