"""Training a probed model on its task, with checkpoints and resume.

The bare torch module under the bridge is trained (same parameters, no hook overhead). Batches
come from the task's 75/25 split; a slice of the training part is kept back for monitoring, so
the held-out test split is touched only by `eval-probed`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.probed.evaluate import correct_mask, score_probed
from engine.probed.model import PAPER_CONFIGS, ProbedConfig, ProbedModel, build_probed
from engine.tasks import TASKS
from engine.train.loop import warmup_cosine

MONITOR_SIZE = 10_000
_ERROR_SAMPLE_STREAM = 1 << 40  # the length-error sample's own stream, apart from every batch stream [seed, step]


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
    # Share of each batch drawn toward the input lengths the starting weights get wrong, in
    # proportion to their error rate there (measured once on a training sample; fine-tuning).
    error_focus: float = 0.0
    # Attention scores of soften_layers are divided by this at step 0, easing linearly to 1 at
    # soften_until x steps. A positional attention pattern that has saturated on the wrong
    # token passes almost no gradient; a softer softmax lets training move it (fine-tuning).
    # Softening a layer that works costs more than it gains: soften only the broken one.
    attention_temperature: float = 1.0
    soften_until: float = 0.7
    soften_layers: tuple[int, ...] | None = None  # the layers softened; None = all

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.steps, self.lr, self.warmup, self.min_lr_frac)

    def temperature_at(self, step: int) -> float:
        end = self.soften_until * self.steps
        return 1.0 + (self.attention_temperature - 1.0) * max(0.0, 1.0 - step / end) if end > 0 else 1.0


# The schedules the bundled models were trained with (see each model's CARD.md).
DEFAULT_SCHEDULES = {name: ProbedTrainConfig(name, **task.train_schedule) for name, task in TASKS.items()}


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


def _spread_over_lengths(tokens: np.ndarray, pad_id: int, weight_of_length) -> np.ndarray:
    """(N,) sampling probabilities: each input length gets weight_of_length(length), shared
    evenly among the inputs of that length."""
    lengths = (tokens != pad_id).sum(axis=1)
    values, inverse, counts = np.unique(lengths, return_inverse=True, return_counts=True)
    per_length = np.array([weight_of_length(int(v)) for v in values], dtype=float)
    w = per_length[inverse] / counts[inverse]
    return w / w.sum()


def length_balanced_weights(tokens: np.ndarray, pad_id: int) -> np.ndarray:
    """(N,) sampling probabilities under which every input length is equally likely."""
    return _spread_over_lengths(tokens, pad_id, lambda length: 1.0)


def error_weights(tokens: np.ndarray, pad_id: int, errors: dict[int, float], floor: float = 0.01) -> np.ndarray:
    """(N,) sampling probabilities under which each input length is drawn in proportion to its
    error rate (+ floor, so that no length drops out)."""
    return _spread_over_lengths(tokens, pad_id, lambda length: errors.get(length, 0.0) + floor)


def length_errors(module, task, tokens: np.ndarray, rng: np.random.Generator,
                  sample: int = 100_000) -> dict[int, float]:
    """{input length: error rate} of a model on a random sample of token grids."""
    idx = rng.choice(len(tokens), size=min(sample, len(tokens)), replace=False)
    was_training = module.training
    module.eval()
    ok = correct_mask(module, task, tokens[idx])
    module.train(was_training)
    lengths = (tokens[idx] != task.pad_id).sum(axis=1)
    return {int(v): float((~ok[lengths == v]).mean()) for v in np.unique(lengths)}


def draw_batch(rng: np.random.Generator, n: int, size: int, parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Indices of one batch: for each (share, probabilities) part that share of the batch drawn
    with those probabilities, the rest uniformly."""
    drawn = [rng.choice(n, size=int(round(size * share)), p=w) for share, w in parts if share > 0]
    rest = size - sum(len(d) for d in drawn)
    return np.concatenate([rng.integers(0, n, size=rest), *drawn])


def set_attention_temperature(module, temperature: float, base_scales: dict, layers=None) -> None:
    """Divide the attention scores of `layers` (None: all) by `temperature`, on top of their
    usual 1/sqrt(d_head). base_scales keeps each attention's own scale, filled on the first call."""
    from transformer_lens.model_bridge.sources.native.model import NativeAttention

    for index, block in enumerate(module.layers):
        if layers is not None and index not in layers:
            continue
        for m in block.modules():
            if isinstance(m, NativeAttention):
                base = base_scales.setdefault(id(m), m.scale)
                m.scale = base * temperature


def train_probed(
    cfg: ProbedTrainConfig,
    checkpoint: Path,
    resume: bool = True,
    device: str | None = None,
    init_state: dict | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_every_s: float = 60.0,
) -> tuple[ProbedModel, ProbedTrainResult]:
    """Train until cfg.steps; returns (ProbedModel, ProbedTrainResult). Checkpoints to `checkpoint`
    (a .safetensors path) at most every checkpoint_every_s seconds; device: "cpu", "cuda", ...
    (default: the best available). on_progress(TrainProgress) as steps go; should_stop() is
    asked between steps (True: save a checkpoint and raise Cancelled).

    init_state: weights to start from (fine-tuning a trained model with a new schedule); a
    checkpoint being resumed takes precedence.
    """
    import torch
    import torch.nn.functional as F

    from engine.runtime import flush_denormals
    from engine.train.loop import OptimiserSettings, TrainingLoop

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
    parts = []
    if cfg.balance_lengths > 0:
        parts.append((cfg.balance_lengths, length_balanced_weights(train, task.pad_id)))

    history: list = []
    errors = None  # {length: error rate} of the starting weights, kept for a resumed run
    loop = TrainingLoop(module.parameters(), model.bridge, OptimiserSettings(cfg.lr, cfg.weight_decay), checkpoint,
                        record=lambda: {"history": history, "train": asdict(cfg),
                                        **({"length_errors": sorted(errors.items())} if errors else {})},
                        checkpoint_every_s=checkpoint_every_s)
    meta = loop.resume(model.device) if resume else {}
    history = meta.get("history", [])
    if cfg.error_focus > 0:
        saved = meta.get("length_errors")
        errors = ({int(k): v for k, v in saved} if saved is not None
                  else length_errors(module, task, train, np.random.default_rng([cfg.seed, _ERROR_SAMPLE_STREAM])))
        parts.append((cfg.error_focus, error_weights(train, task.pad_id, errors)))
    scales: dict = {}
    rng = np.random.default_rng([cfg.seed, loop.step])  # a resumed run draws fresh batches; no two (seed, step) collide
    monitor_acc = history[-1][3] if history else 0.0

    def loss_of_step(step: int):
        idx = draw_batch(rng, len(train), cfg.batch_size, parts)
        if cfg.attention_temperature != 1.0:
            set_attention_temperature(module, cfg.temperature_at(step), scales, cfg.soften_layers)
        batch = torch.as_tensor(train[idx], device=model.device)
        mask = torch.as_tensor(loss_mask_all[idx][:, :-1], device=model.device)
        logits = module(batch)[:, :-1]  # (B, T-1, V) predicting tokens 1..T-1
        return F.cross_entropy(logits[mask], batch[:, 1:][mask])

    def after_step() -> None:
        nonlocal monitor_acc
        if loop.step % cfg.eval_every == 0 or loop.step == cfg.steps:
            module.eval()
            if scales:  # the monitor scores the model as it will be used
                set_attention_temperature(module, 1.0, scales)
            monitor_acc = score_probed(module, task, monitor).accuracy
            module.train()
            history.append((loop.step, loop.elapsed(), loop.loss_ema, monitor_acc))
        if on_progress:
            on_progress(TrainProgress(loop.step, cfg.steps, loop.loss_ema, loop.elapsed(), monitor_acc))

    loop.run(loss_of_step, cfg.lr_at, finished=lambda: loop.step >= cfg.steps, should_stop=should_stop,
             after_step=after_step)
    if scales:
        set_attention_temperature(module, 1.0, scales)
    loop.save()
    module.eval()
    result = ProbedTrainResult(cfg, model_cfg, loop.step, loop.elapsed(), monitor_acc, history)
    return model, result
