"""Build a GPT-2-shaped Hugging Face model folder here, offline, to try the studio at real scale.

    python tools/make_text_model.py OUT [--layers 12 --heads 12 --d-model 768 --vocab 50257]

The folder is what `save_pretrained` writes for a `GPT2LMHeadModel` (config.json,
model.safetensors) plus a byte-level BPE `tokenizer.json` trained on the spot on this
repository's own documentation. The weights are random: the folder exercises opening, sites,
the flow graph and the diagram at GPT-2 small's size (the defaults) without downloading
anything; it predicts nothing meaningful. Open it with `python main.py sites --model OUT` or
File > Open model folder in the app. OUT must not exist yet.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOS = "<|endoftext|>"


def corpus() -> list[str]:
    """Lines of the repository's own text: enough to learn a few thousand merges."""
    lines = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def train_bpe(vocab_size: int):
    if str(ROOT) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(ROOT))
    from engine.text.hf_tokenizer import train_byte_level_bpe

    return train_byte_level_bpe(corpus(), vocab_size, BOS)


def build(out: Path, layers: int = 12, heads: int = 12, d_model: int = 768, vocab: int = 50257,
          n_ctx: int = 1024, seed: int = 0) -> Path:
    """Write the folder; the model's vocabulary is `vocab` even where the tokenizer learned fewer
    tokens (ids beyond the tokenizer are shown as <id N>, as for any model with spare rows)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = train_bpe(min(vocab, 8000))
    bos = tok.token_to_id(BOS)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_positions=n_ctx, n_embd=d_model, n_layer=layers, n_head=heads,
                        bos_token_id=bos, eos_token_id=bos)
    out.mkdir(parents=True)
    GPT2LMHeadModel(config).eval().save_pretrained(str(out))
    tok.save(str(out / "tokenizer.json"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=50257)
    args = ap.parse_args()
    if args.out.exists():
        print(f"error: {args.out} already exists; give a new folder", file=sys.stderr)
        return 2
    if args.d_model % args.heads or min(args.layers, args.heads, args.d_model, args.vocab) < 1:
        print("error: --layers, --heads, --d-model and --vocab must be positive, and --d-model a multiple "
              "of --heads", file=sys.stderr)
        return 2
    build(args.out, args.layers, args.heads, args.d_model, args.vocab)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 2**20
    print(f"wrote {args.out} ({size:.0f} MB): GPT-2 shaped, {args.layers} layers x {args.heads} heads, "
          f"d_model {args.d_model}, vocabulary {args.vocab}, random weights")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
