"""The training loop both trainers share (the probed model's and the decoder's).

It owns what every run here does the same way: AdamW, the learning rate set from a schedule before
each step, gradient clipping, a smoothed loss, checkpoints (weights, optimizer state and the
trainer's own record in one safetensors file) with resume, stop requests, and a training clock
that checks can pause. A trainer brings only its batch and loss (`loss_of_step`), its schedule
(`lr_at`), when it is done (`finished`) and what it records around a step.

A stop request is answered before the next step: the checkpoint is written, then `Cancelled` is
raised, so a stopped run resumes where it stopped.

Under torchrun (engine/train/distributed.py) the ranks agree before every step: the clock is
rank 0's, a stop request on any rank stops all, the shown loss is the mean over ranks, and only
rank 0 writes the checkpoint.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import Cancelled, StoreError
from engine.store.safefiles import load_tensors, optimizer_tensors, restore_optimizer, save_tensors
from engine.train.distributed import Ranks

WEIGHT_PREFIX = "model."  # weight tensors in a checkpoint; the optimizer's are "optim.*"
LOSS_SMOOTHING = 0.98  # the shown loss: an exponential average over about 50 steps


def damaged(checkpoint: Path, what: str) -> StoreError:
    """The one line for a checkpoint that cannot be resumed: what is wrong, and the way out."""
    return StoreError(f"{checkpoint}: a damaged checkpoint ({what}); start afresh with --fresh, or delete the file")


def check_record(checkpoint: Path, meta: dict) -> None:
    """StoreError unless a checkpoint's metadata holds the loop's own fields as the loop writes
    them (step, seconds, loss_ema, optimizer): a hand edit or a damaged file is one line, not a
    traceback mid-resume or a run that believes it made 10^30 steps."""
    from engine.validate import finite, whole

    if not isinstance(meta, dict):
        raise damaged(checkpoint, "its metadata is not a JSON object")
    missing = [k for k in ("step", "seconds", "optimizer") if k not in meta]
    if missing:
        raise damaged(checkpoint, f"its metadata lacks {', '.join(missing)}")
    try:
        whole(meta["step"], "step", 0, 10**12)
        finite(meta["seconds"], "seconds", 0, 1e9)
        loss = meta.get("loss_ema")
        if loss is not None and (isinstance(loss, bool) or not isinstance(loss, (int, float))):
            raise ValueError(f"loss_ema must be a number, got {str(loss)[:40]!r}")
    except ValueError as e:
        raise damaged(checkpoint, str(e)) from None
    optimizer = meta["optimizer"]
    groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
    scalars = optimizer.get("scalars", {}) if isinstance(optimizer, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) and isinstance(g.get("params"), list)
                                               for g in groups) or not isinstance(scalars, dict):
        raise damaged(checkpoint, "its optimizer record is not the parameter groups and scalars the loop writes")


def warmup_cosine(step: int, steps: int, lr: float, warmup: int, min_lr_frac: float) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to min_lr_frac x lr at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@dataclass
class OptimiserSettings:
    lr: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.98)
    clip_norm: float = 1.0


class TrainingLoop:
    """One run's optimiser, step count, clock and checkpoint.

    params: the tensors trained. weights: what the checkpoint keeps and resume restores (its
    state_dict / load_state_dict); the probed model trains its bare module but saves through
    the bridge, whose state dict holds the same parameters under the names the app loads.
    record: the trainer's own fields for the checkpoint's metadata (history, config, ...).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], weights, settings: OptimiserSettings,
                 checkpoint: Path, record: Callable[[], dict] = dict, checkpoint_every_s: float = 60.0,
                 ranks: Ranks | None = None):
        self.ranks = ranks or Ranks()
        self._agreed: float | None = None  # rank 0's elapsed seconds at this step, when distributed
        self.params = list(params)
        self.weights = weights
        self.settings = settings
        self.checkpoint = Path(checkpoint)
        self.record = record
        self.checkpoint_every_s = checkpoint_every_s
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.lr, weight_decay=settings.weight_decay,
                                           betas=settings.betas)
        self.step = 0
        self.loss_ema: float | None = None
        self._seconds_before = 0.0  # training seconds of the runs this one resumes
        self._t0 = time.time()
        self._last_save = self._t0

    # -- resume and save ------------------------------------------------------------------------

    def resume(self, device=None, check: Callable[[dict], None] | None = None) -> dict:
        """Restore the checkpoint when there is one; its metadata ({} for a fresh start).
        check(meta) may refuse a checkpoint (raise) before anything is loaded from it."""
        if not self.checkpoint.is_file():
            return {}
        tensors, meta = load_tensors(self.checkpoint, device=device or "cpu")
        check_record(self.checkpoint, meta)
        if check is not None:
            check(meta)
        try:
            self.weights.load_state_dict({k[len(WEIGHT_PREFIX):]: v for k, v in tensors.items()
                                          if k.startswith(WEIGHT_PREFIX)})
            restore_optimizer(self.optimizer, tensors, meta["optimizer"])
            self._check_optimizer_state()
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()] or [type(e).__name__]
            if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
                lines = [f"its weights do not fit: {lines[1]}"]  # Missing key(s)... / size mismatch for ...
            raise damaged(self.checkpoint, lines[0][:200]) from None
        self.step, self._seconds_before = meta["step"], float(meta["seconds"])
        self.loss_ema = meta.get("loss_ema")
        self._t0 = self._last_save = time.time()
        return meta

    def _check_optimizer_state(self) -> None:
        """ValueError when a restored optimizer tensor does not fit its parameter (it would fail at
        the first step, deep in AdamW)."""
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                for name, value in self.optimizer.state.get(param, {}).items():
                    if name != "step" and isinstance(value, torch.Tensor) and value.shape != param.shape:
                        raise ValueError(f"optimizer state {name} has shape {tuple(value.shape)}, its parameter "
                                         f"{tuple(param.shape)}")

    def save(self) -> None:
        """Write the checkpoint (rank 0 only: every rank holds the same weights)."""
        if not self.ranks.main:
            return
        tensors, info = optimizer_tensors(self.optimizer)
        tensors.update({f"{WEIGHT_PREFIX}{k}": v for k, v in self.weights.state_dict().items()})
        save_tensors(self.checkpoint, tensors, {"step": self.step, "seconds": self.elapsed(),
                                                "loss_ema": self.loss_ema, "optimizer": info, **self.record()})
        self._last_save = time.time()

    # -- the clock ------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds spent training, over this run and the runs it resumes, pauses not counted
        (distributed: rank 0's figure as agreed at the start of this step)."""
        if self._agreed is not None:
            return self._agreed
        return self._own_elapsed()

    def _own_elapsed(self) -> float:
        return self._seconds_before + time.time() - self._t0

    @contextmanager
    def paused(self):
        """Time spent inside is not training time (in-training checks: the quality curve is
        quality against time spent training)."""
        started = time.time()
        try:
            yield
        finally:
            self._t0 += time.time() - started

    # -- the loop -------------------------------------------------------------------------------

    def run(self, loss_of_step: Callable[[int], torch.Tensor], lr_at: Callable[[int], float],
            finished: Callable[[], bool], should_stop: Callable[[], bool] | None = None,
            stop_message: str = "training stopped; the checkpoint keeps the progress",
            before_step: Callable[[], None] | None = None, after_step: Callable[[], None] | None = None) -> None:
        """Step until finished(). The caller saves at the end (after its own last record)."""
        self._t0 = self._last_save = time.time()
        while True:
            stop = should_stop is not None and should_stop()
            if self.ranks.active:  # one clock and one stop decision for all ranks
                self._agreed = None
                self._agreed = self.ranks.from_main(self._own_elapsed())
                stop = self.ranks.any_rank(stop)
            if finished():
                break
            if stop:
                self.save()
                raise Cancelled(stop_message)
            if before_step is not None:
                before_step()
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(self.step)
            loss = loss_of_step(self.step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.clip_norm)
            self.optimizer.step()
            self.step += 1
            value = self.ranks.mean(loss.item())
            self.loss_ema = value if self.loss_ema is None else (
                LOSS_SMOOTHING * self.loss_ema + (1 - LOSS_SMOOTHING) * value)
            if after_step is not None:
                try:
                    after_step()
                except Cancelled:  # a stop asked for during the caller's in-training check
                    self.save()
                    raise
            if time.time() - self._last_save > self.checkpoint_every_s:
                self.save()
