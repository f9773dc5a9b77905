"""Training the ioi model: a GPT-2-architecture language model that learns IOI from the prompts.

The model is a Hugging Face `GPT2LMHeadModel` trained from scratch on training-split IOI prompts
(engine/tasks/ioi_prompts.py) with a byte-level BPE tokenizer trained on the prompts themselves
(every name one token with its leading space, as in GPT-2). The loss is next-token cross-entropy
over the whole prompt with the answer (the IO name after END) weighted ANSWER_WEIGHT times: the
names in the first clause are unpredictable by design, and without the weight the task's one
informative token is a small share of the loss. It is saved as a Hugging Face folder
(config.json, model.safetensors, tokenizer.json) that the studio opens through the real-models
path like any GPT-2, with `"prompts": "ioi"` in its record. Size and steps come from
benchmarks/ioi_model_size.py (README).

Training runs in the one training loop (engine/train/loop.py): progress, checkpoints, resume, stop.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.tasks.ioi_prompts import ioi_split, load_ioi, sample_prompts
from engine.train.loop import OptimiserSettings, TrainingLoop, warmup_cosine

BOS = "<|endoftext|>"
TOKENIZER_PROMPTS = 20_000  # prompts the tokenizer is trained on (the vocabulary saturates at ~774 tokens)
MONITOR_EVERY = 200


@dataclass
class IOITrainConfig:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    answer_weight: float = 20.0
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    n_ctx: int = 64
    vocab_size: int = 800
    seed: int = 0

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.steps, self.lr, self.warmup, self.min_lr_frac)


@dataclass
class IOIProgress:
    step: int
    total: int
    seconds: float
    loss: float
    monitor_accuracy: float | None = None  # IO accuracy at END on training-split prompts


@dataclass
class IOITrainResult:
    steps: int
    seconds: float
    history: list = field(default_factory=list)  # (step, seconds, loss, monitor accuracy)


def train_tokenizer(seed: int = 0, vocab_size: int = 800):
    """A byte-level BPE tokenizer (GPT-2's kind) trained on IOI prompts."""
    from engine.text.hf_tokenizer import train_byte_level_bpe

    texts = [p.text for p in sample_prompts(load_ioi(), TOKENIZER_PROMPTS, np.random.default_rng([seed, 7]))]
    return train_byte_level_bpe(texts, vocab_size, BOS)


def new_model(cfg: IOITrainConfig, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    bos = tok.token_to_id(BOS)
    torch.manual_seed(cfg.seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=cfg.n_ctx, n_embd=cfg.d_model,
                                      n_layer=cfg.n_layers, n_head=cfg.n_heads, bos_token_id=bos, eos_token_id=bos,
                                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))


def encode(tok, prompts, answer_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens (B, T) with BOS, padded with BOS; per-target weights (B, T-1), the answer's
    1 + answer_weight; END positions (B,))."""
    bos = tok.token_to_id(BOS)
    rows = [[bos, *tok.encode(p.text).ids] for p in prompts]
    grid = torch.full((len(rows), max(map(len, rows))), bos)
    weight = torch.zeros(grid.shape[0], grid.shape[1] - 1)
    for i, r in enumerate(rows):
        grid[i, :len(r)] = torch.tensor(r)
        weight[i, :len(r) - 1] = 1.0
        weight[i, len(r) - 2] += answer_weight  # predicting the answer, from END
    return grid, weight, torch.tensor([len(r) - 2 for r in rows])


def prompt_loss(model, tok, prompts, answer_weight: float) -> torch.Tensor:
    """The training loss of a batch of prompts: next-token cross-entropy, the answer weighted."""
    grid, weight, _ = encode(tok, prompts, answer_weight)
    ce = F.cross_entropy(model(grid).logits[:, :-1].transpose(1, 2), grid[:, 1:], reduction="none")  # (B, T-1)
    return (ce * weight).sum() / weight.sum()


def io_scores(model, tok, prompts) -> tuple[float, float]:
    """(IO-name accuracy at END, mean logit difference IO - S there) of a Hugging Face model."""
    hits, diffs = io_hits(model, tok, prompts)
    return float(hits.float().mean()), float(diffs.mean())


@torch.no_grad()
def io_hits(model, tok, prompts) -> tuple[torch.Tensor, torch.Tensor]:
    """Per prompt: (whether the model's top token at END is the IO name (N,), logit IO - S there (N,))."""
    grid, _, end = encode(tok, prompts, 0.0)
    was = model.training
    model.eval()
    last = model(grid).logits[torch.arange(len(prompts)), end]  # (N, V)
    model.train(was)
    io = torch.tensor([tok.encode(" " + p.io).ids[0] for p in prompts])
    s = torch.tensor([tok.encode(" " + p.s).ids[0] for p in prompts])
    return last.argmax(-1) == io, (last.gather(1, io[:, None]) - last.gather(1, s[:, None]))[:, 0]


class TiedWeights:
    """The model's weights for a checkpoint: GPT-2 ties the unembedding to the embedding, and a
    safetensors file refuses two names for one tensor, so the checkpoint keeps the embedding once."""

    TIED = "lm_head.weight"

    def __init__(self, model):
        self.model = model

    def state_dict(self) -> dict:
        return {k: v for k, v in self.model.state_dict().items() if k != self.TIED}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict({**state, self.TIED: state["transformer.wte.weight"]})


def train_ioi(cfg: IOITrainConfig, checkpoint: Path, resume: bool = True,
              on_progress: Callable[[IOIProgress], None] | None = None,
              should_stop: Callable[[], bool] | None = None):
    """(model, tokenizer, result): cfg.steps of training, resuming `checkpoint` when it exists."""
    from tokenizers import Tokenizer

    data = load_ioi()
    split = ioi_split(data)
    tok = train_tokenizer(cfg.seed, cfg.vocab_size)
    model = new_model(cfg, tok)
    history: list = []
    loop = TrainingLoop(model.parameters(), TiedWeights(model), OptimiserSettings(cfg.lr, cfg.weight_decay), checkpoint,
                        record=lambda: {"history": history, "train": asdict(cfg), "tokenizer": tok.to_str()})
    if resume:
        meta = loop.resume()
        if meta:
            history = meta["history"]
            if Tokenizer.from_str(meta["tokenizer"]).get_vocab() != tok.get_vocab():
                raise ValueError("the checkpoint's tokenizer differs from this one")
    monitor = sample_prompts(data, 256, np.random.default_rng([cfg.seed, 99]), split, "train")

    def loss_of_step(step: int) -> torch.Tensor:
        prompts = sample_prompts(data, cfg.batch_size, np.random.default_rng([cfg.seed, step]), split, "train")
        return prompt_loss(model, tok, prompts, cfg.answer_weight)

    def after_step() -> None:
        acc = None
        if loop.step % MONITOR_EVERY == 0 or loop.step == cfg.steps:
            acc = io_scores(model, tok, monitor)[0]
            history.append((loop.step, loop.elapsed(), loop.loss_ema, acc))
        if on_progress:
            on_progress(IOIProgress(loop.step, cfg.steps, loop.elapsed(), loop.loss_ema, acc))

    model.train()
    loop.run(loss_of_step, cfg.lr_at, lambda: loop.step >= cfg.steps, should_stop=should_stop,
             stop_message="ioi training stopped; the checkpoint keeps the progress", after_step=after_step)
    loop.save()
    model.eval()
    return model, tok, IOITrainResult(loop.step, loop.elapsed(), history)


def save_ioi_folder(out: Path, model, tok, record: dict) -> None:
    """The Hugging Face folder (config.json, model.safetensors, tokenizer.json) with the studio's
    record (`record` merged in, "prompts": "ioi"), written as one unit."""
    from engine.store.folders import read_config, write_config
    from engine.store.staging import rewrite_folder

    with rewrite_folder(Path(out)) as staging:
        for old in staging.iterdir():  # a new model replaces the old one's files
            if old.is_file():
                old.unlink()
        model.save_pretrained(str(staging), safe_serialization=True)
        tok.save(str(staging / "tokenizer.json"))
        config = read_config(staging)  # the text record Hugging Face's config.json gives
        config.update(record, name=Path(out).name, prompts="ioi")
        write_config(staging, config)
