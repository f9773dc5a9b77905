"""Training a decoder for a probed model within a time budget, with checkpoints and resume.

The learning rate warms up over the first steps, then follows a cosine over the *time* budget
(the number of steps a CPU manages in N minutes is not known in advance).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import Cancelled
from ..probed import ProbedModel
from ..safefiles import load_tensors, optimizer_tensors, restore_optimizer, save_tensors
from ..sites import Site, paper_sites
from .model import ConditionalDecoder, DecoderConfig
from .pairs import make_pairs


@dataclass
class DecoderTrainConfig:
    minutes: float
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 200
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4

    def lr_at(self, step: int, time_frac: float) -> float:
        warm = min(1.0, (step + 1) / self.warmup)
        cos = 0.5 * (1 + math.cos(math.pi * min(max(time_frac, 0.0), 1.0)))
        return self.lr * warm * (self.min_lr_frac + (1 - self.min_lr_frac) * cos)


@dataclass
class DecoderProgress:
    step: int
    seconds: float
    budget: float
    loss: float
    pairs: int


@dataclass
class DecoderTrainResult:
    config: DecoderTrainConfig
    decoder_config: DecoderConfig
    sites: list[str]  # site ids, in the decoder's site-embedding order
    steps: int
    pairs: int
    seconds: float
    history: list = field(default_factory=list)  # (step, seconds, loss)


def new_decoder(probed: ProbedModel, cfg: DecoderTrainConfig, sites: list[Site]) -> ConditionalDecoder:
    pc = probed.config
    dcfg = DecoderConfig(d_act=pc.d_model, n_sites=len(sites), d_vocab=pc.d_vocab, n_ctx=pc.n_ctx,
                         d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads)
    torch.manual_seed(cfg.seed)
    return ConditionalDecoder(dcfg).to(probed.device)


def sequence_loss(decoder: ConditionalDecoder, batch, pad_id: int) -> torch.Tensor:
    """Next-token cross-entropy over the whole input (BOS..EOS), padding ignored."""
    length = int((batch.tokens != pad_id).sum(dim=1).max())  # drop all-padding columns
    tokens = batch.tokens[:, :length]
    logits = decoder(tokens[:, :-1], batch.z, batch.site_ids)  # (B, L-1, V)
    targets = tokens[:, 1:].masked_fill(tokens[:, 1:] == pad_id, -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def train_decoder(
    probed: ProbedModel,
    cfg: DecoderTrainConfig,
    checkpoint: Path,
    resume: bool = True,
    on_progress: Callable[[DecoderProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_every_s: float = 60.0,
) -> tuple[ConditionalDecoder, DecoderTrainResult]:
    task = probed.task
    sites = paper_sites(probed.config)
    decoder = new_decoder(probed, cfg, sites)
    opt = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    step, pairs, seconds_before, history = 0, 0, 0.0, []
    if resume and Path(checkpoint).is_file():
        tensors, meta = load_tensors(checkpoint, device=probed.device)
        decoder.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        restore_optimizer(opt, tensors, meta["optimizer"])
        step, pairs, seconds_before, history = meta["step"], meta["pairs"], meta["seconds"], meta["history"]
    budget = cfg.minutes * 60.0
    train_inputs = task.split(0).train
    rng = np.random.default_rng(cfg.seed + 7919 * step)
    t0 = time.time()

    def elapsed() -> float:
        return seconds_before + time.time() - t0

    def save_checkpoint() -> None:
        tensors, info = optimizer_tensors(opt)
        tensors.update({f"model.{k}": v for k, v in decoder.state_dict().items()})
        save_tensors(checkpoint, tensors, {"step": step, "pairs": pairs, "seconds": elapsed(), "history": history,
                                           "optimizer": info, "train": asdict(cfg)})

    decoder.train()
    last_ckpt, loss_ema = time.time(), None
    while elapsed() < budget:
        if should_stop and should_stop():
            save_checkpoint()
            raise Cancelled("decoder training stopped; the checkpoint keeps the progress")
        idx = rng.integers(0, len(train_inputs), size=cfg.batch_size)
        batch = make_pairs(probed, sites, train_inputs[idx], rng)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step, elapsed() / budget)
        loss = sequence_loss(decoder, batch, task.pad_id)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
        opt.step()
        step += 1
        pairs += cfg.batch_size
        loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
        if step % 100 == 0:
            history.append((step, elapsed(), loss_ema))
        if time.time() - last_ckpt > checkpoint_every_s:
            save_checkpoint()
            last_ckpt = time.time()
        if on_progress:
            on_progress(DecoderProgress(step, elapsed(), budget, loss_ema, pairs))
    save_checkpoint()
    decoder.eval()
    result = DecoderTrainResult(cfg, decoder.cfg, [s.id for s in sites], step, pairs, elapsed(), history)
    return decoder, result
