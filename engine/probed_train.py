"""Training a probed model on its task, with checkpoints and resume.

The bare torch module under the bridge is trained (same parameters, no hook overhead). Batches
come from the task's 75/25 split; a slice of the training part is kept back for monitoring, so
the held-out test split is touched only by `eval-probed`.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import Cancelled
from .probed import PAPER_CONFIGS, ProbedConfig, build_probed
from .probed_eval import score_probed
from .safefiles import load_tensors, optimizer_tensors, restore_optimizer, save_tensors

MONITOR_SIZE = 10_000


@dataclass
class ProbedTrainConfig:
    """A training schedule: AdamW, linear warm-up, cosine decay to min_lr_frac * lr."""

    task: str
    steps: int
    batch_size: int
    lr: float
    warmup: int = 500
    min_lr_frac: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 1000
    # Share of each batch drawn so that every input length is equally likely. Uniform draws
    # starve the rare shortest and longest inputs (their late position embeddings barely train),
    # which is where a counting model's last errors sit.
    balance_lengths: float = 0.0

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (self.min_lr_frac + (1 - self.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


# The schedules the bundled models were trained with (see each model's CARD.md).
DEFAULT_SCHEDULES = {
    "counting": ProbedTrainConfig("counting", steps=12_000, batch_size=256, lr=2e-3, warmup=500),
    "addition": ProbedTrainConfig("addition", steps=4_000, batch_size=512, lr=3e-3, warmup=300),
}


@dataclass
class TrainProgress:
    step: int
    total: int
    loss: float
    elapsed: float
    monitor_accuracy: float | None = None

    @property
    def eta(self) -> float:
        return self.elapsed / max(self.step, 1) * (self.total - self.step)


@dataclass
class ProbedTrainResult:
    config: ProbedTrainConfig
    model_config: ProbedConfig
    steps_done: int
    seconds: float
    monitor_accuracy: float
    history: list = field(default_factory=list)  # (step, seconds, loss, monitor accuracy)


def length_balanced_weights(tokens: np.ndarray, pad_id: int) -> np.ndarray:
    """(N,) sampling probabilities under which every input length is equally likely."""
    lengths = (tokens != pad_id).sum(axis=1)
    _, inverse, counts = np.unique(lengths, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w / w.sum()


def draw_batch(rng: np.random.Generator, n: int, size: int, balanced_share: float, weights) -> np.ndarray:
    """Indices of one batch: the first (1 - share) uniform, the rest length-balanced."""
    n_bal = int(round(size * balanced_share))
    uniform = rng.integers(0, n, size=size - n_bal)
    if n_bal == 0:
        return uniform
    return np.concatenate([uniform, rng.choice(n, size=n_bal, p=weights)])


def train_probed(
    cfg: ProbedTrainConfig,
    checkpoint: Path,
    resume: bool = True,
    device=None,
    init_state: dict | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_every_s: float = 60.0,
):
    """Train until cfg.steps; returns (ProbedModel, ProbedTrainResult). Checkpoints to `checkpoint`.

    init_state: weights to start from (fine-tuning a trained model with a new schedule); a
    checkpoint being resumed takes precedence.
    """
    import torch
    import torch.nn.functional as F

    from .runtime import flush_denormals

    flush_denormals()
    model_cfg = PAPER_CONFIGS[cfg.task]
    model = build_probed(model_cfg, seed=cfg.seed, device=device)
    if init_state is not None:
        model.bridge.load_state_dict(init_state)
    module = model.module
    module.train()
    task = model.task
    split = task.split(0)
    train, monitor = split.train[:-MONITOR_SIZE], split.train[-MONITOR_SIZE:]
    loss_mask_all = task.loss_mask(train)
    weights = length_balanced_weights(train, task.pad_id) if cfg.balance_lengths > 0 else None

    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    step, elapsed_before, history = 0, 0.0, []
    if resume and Path(checkpoint).is_file():
        tensors, meta = load_tensors(checkpoint, device=model.device)
        model.bridge.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        restore_optimizer(opt, tensors, meta["optimizer"])
        step, elapsed_before, history = meta["step"], meta["seconds"], meta["history"]

    def save_checkpoint() -> None:
        tensors, info = optimizer_tensors(opt)
        tensors.update({f"model.{k}": v for k, v in model.bridge.state_dict().items()})
        save_tensors(checkpoint, tensors, {"step": step, "seconds": elapsed_before + time.time() - t0,
                                           "history": history, "optimizer": info, "train": asdict(cfg)})

    rng = np.random.default_rng(cfg.seed + 1000 * step)  # a resumed run draws fresh batches
    t0 = time.time()
    last_ckpt = t0
    monitor_acc = history[-1][3] if history else 0.0
    loss_ema = None
    while step < cfg.steps:
        if should_stop and should_stop():
            save_checkpoint()
            raise Cancelled("training stopped; the checkpoint keeps the progress")
        idx = draw_batch(rng, len(train), cfg.batch_size, cfg.balance_lengths, weights)
        batch = torch.as_tensor(train[idx], device=model.device)
        mask = torch.as_tensor(loss_mask_all[idx][:, :-1], device=model.device)
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        logits = module(batch)[:, :-1]  # (B, T-1, V) predicting tokens 1..T-1
        loss = F.cross_entropy(logits[mask], batch[:, 1:][mask])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        step += 1
        loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
        now = time.time()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            module.eval()
            monitor_acc = score_probed(module, task, monitor).accuracy
            module.train()
            history.append((step, elapsed_before + now - t0, loss_ema, monitor_acc))
        if now - last_ckpt > checkpoint_every_s:
            save_checkpoint()
            last_ckpt = now
        if on_progress:
            on_progress(TrainProgress(step, cfg.steps, loss_ema, elapsed_before + now - t0, monitor_acc))
    save_checkpoint()
    module.eval()
    result = ProbedTrainResult(cfg, model_cfg, step, elapsed_before + time.time() - t0, monitor_acc, history)
    return model, result
