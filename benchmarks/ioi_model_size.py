"""How small a GPT-2-architecture model learns IOI from the prompt distribution, and how fast.

    python benchmarks/ioi_model_size.py [--layers 4 --heads 4 --d-model 128] [--minutes 10]
                                        [--answer-weight 20] [--vocab 800] [--threads 1]

Trains the ioi model's tokenizer and a randomly initialised GPT-2 of the given size the way
`train-probed ioi` does (engine/probed/ioi_train.py: the same tokenizer, model and weighted loss,
constant learning rate after warm-up, for a time budget instead of steps), and every 200 steps
prints the IO-name accuracy at END and the mean logit difference IO - S on 500 held-out prompts,
also split into held-out templates and held-out (name, order) pairs. This is the measurement
behind the bundled ioi model's size; it writes nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=800)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--answer-weight", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import torch

    from engine.probed.ioi_train import IOITrainConfig, io_hits, new_model, prompt_loss, train_tokenizer
    from engine.tasks.ioi_prompts import ioi_split, load_ioi, sample_prompts

    torch.set_num_threads(args.threads)
    cfg = IOITrainConfig(n_layers=args.layers, n_heads=args.heads, d_model=args.d_model, vocab_size=args.vocab,
                         batch_size=args.batch_size, lr=args.lr, answer_weight=args.answer_weight)
    data = load_ioi()
    split = ioi_split(data)
    tok = train_tokenizer(cfg.seed, cfg.vocab_size)
    split_names = [n for n in data.names if len(tok.encode(" " + n).ids) != 1]
    print(f"tokenizer: {tok.get_vocab_size()} tokens; names that are not one token: {len(split_names)}")
    model = new_model(cfg, tok)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {cfg.n_layers} layers x {cfg.n_heads} heads, d_model {cfg.d_model}: {n_params:,} parameters "
          f"({n_params * 4 / 1e6:.1f} MB fp32)")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    test = sample_prompts(data, 500, np.random.default_rng(99), split, "test")
    held_template = torch.tensor([p.template in split.test_templates for p in test])
    held_name = torch.tensor([p.io in split.held_out_io(p.order) for p in test])

    def evaluate() -> str:
        hits, diffs = io_hits(model, tok, test)
        hits = hits.float()
        return (f"IO accuracy {hits.mean():.3f} (held-out templates {hits[held_template].mean():.3f}, held-out "
                f"name-order {hits[held_name].mean():.3f}), logit diff IO - S {diffs.mean():.2f}")

    t0, step = time.time(), 0
    model.train()
    while time.time() - t0 < args.minutes * 60:
        batch = sample_prompts(data, cfg.batch_size, np.random.default_rng([1, step]), split, "train")
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        loss = prompt_loss(model, tok, batch, cfg.answer_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f"{time.time() - t0:5.0f} s  step {step:5d}  loss {loss.item():.3f}  {evaluate()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
