"""A decoder training run's settings, apart from the training code so that the command line and
the app can read the defaults without importing torch."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class DecoderTrainConfig:
    """A decoder's training run: a budget in minutes of wall time (or `steps`), AdamW with lr
    (per step, linear warm-up over `warmup` steps, cosine decay to min_lr_frac * lr), batch_size
    (query, input) pairs per step, the decoder's size (d_model, n_layers, n_heads), and in-training
    quality checks every check_every_s seconds (or check_every_steps steps)."""

    minutes: float
    batch_size: int = 256
    lr: float = 2e-3
    warmup: int = 200
    min_lr_frac: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    buckets: int = 4  # length slices per batch (1 = pad the whole batch to its longest input)
    focus: float = 0.5  # share of pairs whose site is drawn in proportion to its miss rate
    check_every_s: float = 120.0  # in-training quality checks (0 = none)
    check_queries: int = 48  # queries per site in each check
    check_sites: int = 32  # sites tested in each check at most, in turn (a GPT-2-small-shaped model has 157)
    # A budget in steps instead of minutes (scripts and tests: the same work on a busy machine
    # as on an idle one). With steps set, the cosine follows steps and checks come every
    # check_every_steps steps (0 = none); minutes and check_every_s are then not used.
    steps: int | None = None
    check_every_steps: int = 0
    sites: tuple[str, ...] | None = None  # the sites trained on (None: the task's default choice)
    length: int | None = None  # a text model's decoder context (None: TEXT_DECODER_LENGTH)

    def done_frac(self, step: int, seconds: float) -> float:
        """How much of the budget is spent: steps when the budget is in steps, else time."""
        if self.steps is not None:
            return step / max(self.steps, 1)
        return seconds / (self.minutes * 60.0) if self.minutes > 0 else 1.0

    def lr_at(self, step: int, time_frac: float) -> float:
        warm = min(1.0, (step + 1) / self.warmup)
        cos = 0.5 * (1 + math.cos(math.pi * min(max(time_frac, 0.0), 1.0)))
        return self.lr * warm * (self.min_lr_frac + (1 - self.min_lr_frac) * cos)
