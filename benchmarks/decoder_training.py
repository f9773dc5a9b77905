"""Decoder training: throughput, and quality per CPU-minute.

    python benchmarks/decoder_training.py throughput [--steps 20] [--threads 1]
    python benchmarks/decoder_training.py quality --task addition --minutes 6 --variant focus=0 --variant focus=0.5

`throughput` prints, per task, batch size and number of length buckets: milliseconds per
optimizer step, pairs per second and real (non-padding) tokens per second. The arithmetic is the
same in every row; only the padding computed differs.

`quality` trains one fresh decoder per variant (each `--variant` is a comma list of
DecoderTrainConfig fields, e.g. `lr=2e-3,batch_size=256`) for the same time budget on the bundled
probed model, with in-training checks, and prints each run's in-epsilon curve against training
minutes, then the final check per site. Run variants side by side, one thread each, so that they
share the machine equally.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def throughput(args) -> None:
    import numpy as np

    from engine.decoder.loss import sequence_loss
    from engine.decoder.pairs import make_pairs
    from engine.decoder.train import DecoderTrainConfig, new_decoder
    from engine.probed.sites import paper_sites
    from engine.runtime import torch
    from engine.store.folders import find_model, load_probed

    print(f"{'task':<9} {'batch':>5} {'buckets':>7} {'ms/step':>8} {'pairs/s':>8} {'tokens/s':>9}")
    for task in args.tasks:
        probed = load_probed(find_model(task))
        sites = paper_sites(probed.config)
        train = probed.task.split(0).train
        for batch_size in args.batch_sizes:
            rng = np.random.default_rng(0)
            batches = [make_pairs(probed, sites, train[rng.integers(0, len(train), batch_size)], rng)
                       for _ in range(args.steps)]
            real = sum(int((b.tokens[:, 1:] != probed.task.pad_id).sum()) for b in batches)
            for buckets in args.buckets:
                cfg = DecoderTrainConfig(minutes=1, batch_size=batch_size)
                decoder = new_decoder(probed, cfg, sites)
                opt = torch.optim.AdamW(decoder.parameters(), lr=1e-3)
                for i, batch in enumerate(batches[:3] + batches):  # 3 warm-up steps
                    if i == 3:
                        t0 = time.perf_counter()
                    loss = sequence_loss(decoder, batch, probed.task.pad_id, buckets)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                seconds = time.perf_counter() - t0
                print(f"{task:<9} {batch_size:>5} {buckets:>7} {1e3 * seconds / args.steps:>8.1f} "
                      f"{batch_size * args.steps / seconds:>8.0f} {real / seconds:>9.0f}")


def parse_variant(text: str):
    from engine.decoder.train import DecoderTrainConfig

    types = {f.name: f.type for f in fields(DecoderTrainConfig)}
    changes = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in types or key == "minutes":
            raise SystemExit(f"unknown field {key!r}; fields: {', '.join(k for k in types if k != 'minutes')}")
        kind = str(types[key])
        if "bool" in kind:
            changes[key] = value.lower() in ("1", "true", "yes")
        else:
            changes[key] = float(value) if "float" in kind else int(value)
    return changes


def quality(args) -> None:
    from engine.decoder.train import DecoderTrainConfig, train_decoder
    from engine.store.folders import find_model, load_probed

    probed = load_probed(find_model(args.task))
    for text in args.variant or [""]:
        base = DecoderTrainConfig(minutes=args.minutes, check_every_s=60 * args.check_every)
        cfg = replace(base, **parse_variant(text))
        with tempfile.TemporaryDirectory() as tmp:
            _, result = train_decoder(probed, cfg, Path(tmp) / "ckpt.safetensors", resume=False)
        print(f"\n{args.task} [{text or 'defaults'}]: {result.steps} steps, {result.pairs:,} pairs "
              f"in {result.seconds / 60:.1f} training minutes ({result.pairs / result.seconds:.0f} pairs/s)")
        print("minutes  pairs      average  well-formed")
        for q in result.quality:
            print(f"{q.seconds / 60:>7.1f}  {q.pairs:>9,}  {q.average:>7.2f}  {q.well_formed:>11.0%}")
        last = result.quality[-1]
        print("last check per site: " + " ".join(f"{k} {v:.2f}" for k, v in last.rates.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--tasks", nargs="+", default=["counting", "addition"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 256])
    p.add_argument("--buckets", nargs="+", type=int, default=[1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=20)
    p = sub.add_parser("quality")
    p.add_argument("--task", default="addition", choices=["counting", "addition"])
    p.add_argument("--minutes", type=float, default=6.0)
    p.add_argument("--check-every", type=float, default=1.0, help="minutes between checks")
    p.add_argument("--variant", action="append", help="comma list of DecoderTrainConfig changes")
    args = parser.parse_args()


    from engine.threads import apply_threads

    apply_threads(args.threads)
    (throughput if args.what == "throughput" else quality)(args)


if __name__ == "__main__":
    main()
