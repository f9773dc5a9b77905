"""Scoring a probed model on its task: counting accuracy, addition exact match."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.tasks.base import Task


@dataclass(frozen=True)
class ProbedScore:
    task: str
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.n, 1)


def correct_rows(task: Task, logits, tokens) -> np.ndarray:
    """(N,) bool: inputs whose scored next-token predictions are all right (teacher forcing)."""
    import torch

    tokens_t = torch.as_tensor(tokens, device=logits.device)
    pred = logits[:, :-1].argmax(-1)  # (N, T-1) prediction for token i+1
    mask = torch.as_tensor(task.scored_positions(np.asarray(tokens))[:, :-1], device=logits.device)
    wrong = (pred != tokens_t[:, 1:]) & mask
    return (~wrong.any(dim=1)).cpu().numpy()


def correct_mask(module, task: Task, tokens: np.ndarray, batch_size: int = 4096, progress=None) -> np.ndarray:
    """(N,) bool: which token grids (N, n_ctx) a probed model (its bare torch module) gets right."""
    import torch

    device = next(module.parameters()).device
    ok = np.zeros(len(tokens), dtype=bool)
    with torch.inference_mode():
        for start in range(0, len(tokens), batch_size):
            chunk = tokens[start:start + batch_size]
            ok[start:start + len(chunk)] = correct_rows(task, module(torch.as_tensor(chunk, device=device)), chunk)
            if progress:
                progress(min(start + batch_size, len(tokens)), len(tokens))
    return ok


def score_probed(module, task: Task, tokens: np.ndarray, batch_size: int = 4096, progress=None) -> ProbedScore:
    """Exact-match score of a probed model (its bare torch module) on token grids (N, n_ctx)."""
    return ProbedScore(task.name, len(tokens), int(correct_mask(module, task, tokens, batch_size, progress).sum()))
