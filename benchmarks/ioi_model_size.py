"""How small a GPT-2-architecture model learns IOI from the prompt distribution, and how fast.

    python benchmarks/ioi_model_size.py [--layers 4 --heads 4 --d-model 128] [--minutes 10]
                                        [--answer-weight 20] [--vocab 800] [--threads 1]

Trains a byte-level BPE tokenizer on the IOI prompts (engine/tasks/ioi_prompts.py) and a
randomly initialised Hugging Face GPT2LMHeadModel on training-split prompts (next-token loss, the
answer token weighted by --answer-weight), and every 200 steps prints the IO-name accuracy at END
and the mean logit difference IO - S on 500 held-out prompts, also split into held-out templates
and held-out (name, order). This is the measurement behind the bundled ioi model's size; it
writes nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def train_tokenizer(prompts, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's convention
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([p.text for p in prompts],
                            trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                show_progress=False))
    return tok


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
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    from engine.tasks.ioi_prompts import ioi_split, load_ioi, sample_prompts

    torch.set_num_threads(args.threads)
    data = load_ioi()
    split = ioi_split(data)
    tok = train_tokenizer(sample_prompts(data, 20_000, np.random.default_rng(0)), args.vocab)
    bos = tok.token_to_id("<|endoftext|>")
    split_names = [n for n in data.names if len(tok.encode(" " + n).ids) != 1]
    print(f"tokenizer: {tok.get_vocab_size()} tokens; names that are not one token: {len(split_names)}")

    def encode(prompts):
        rows = [[bos, *tok.encode(p.text).ids] for p in prompts]
        grid = torch.full((len(rows), max(map(len, rows))), bos)
        weight = torch.zeros(grid.shape[0], grid.shape[1] - 1)  # per target position
        for i, r in enumerate(rows):
            grid[i, :len(r)] = torch.tensor(r)
            weight[i, :len(r) - 1] = 1.0
            weight[i, len(r) - 2] += args.answer_weight  # the answer: the IO name after END
        return grid, weight, torch.tensor([len(r) - 2 for r in rows])  # END positions

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=64, n_embd=args.d_model,
                                       n_layer=args.layers, n_head=args.heads, bos_token_id=bos, eos_token_id=bos,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.layers} layers x {args.heads} heads, d_model {args.d_model}: {n_params:,} parameters "
          f"({n_params * 4 / 1e6:.1f} MB fp32)")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    test = sample_prompts(data, 500, np.random.default_rng(99), split, "test")
    test_grid, _, test_end = encode(test)
    io = torch.tensor([tok.encode(" " + p.io).ids[0] for p in test])
    s = torch.tensor([tok.encode(" " + p.s).ids[0] for p in test])
    held_template = torch.tensor([p.template in split.test_templates for p in test])
    held_name = torch.tensor([p.io in split.held_out_io(p.order) for p in test])

    def evaluate() -> str:
        model.eval()
        with torch.no_grad():
            last = model(test_grid).logits[torch.arange(len(test)), test_end]  # (N, V) at END
        model.train()
        hit = (last.argmax(-1) == io).float()
        diff = (last.gather(1, io[:, None]) - last.gather(1, s[:, None])).mean()
        return (f"IO accuracy {hit.mean():.3f} (held-out templates {hit[held_template].mean():.3f}, held-out "
                f"name-order {hit[held_name].mean():.3f}), logit diff IO - S {diff:.2f}")

    t0, step = time.time(), 0
    while time.time() - t0 < args.minutes * 60:
        batch = sample_prompts(data, args.batch_size, np.random.default_rng([1, step]), split, "train")
        grid, weight, _ = encode(batch)
        for group in opt.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100)
        ce = F.cross_entropy(model(grid).logits[:, :-1].transpose(1, 2), grid[:, 1:], reduction="none")  # (B, T-1)
        loss = (ce * weight).sum() / weight.sum()
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
