"""eval-probed for a model that follows the IOI prompts: IO-name accuracy at END and the mean
logit difference IO - S on the held-out prompts, through the studio's own loaded model (the
bridge, weights processed: per-position logit shifts change neither the argmax nor a difference)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.tasks.ioi_prompts import held_out_prompts


@dataclass
class IOIScore:
    n: int
    accuracy: float
    logit_diff: float


@torch.inference_mode()
def evaluate_ioi(probed, limit: int | None = None, batch: int = 250) -> IOIScore:
    task = probed.task
    prompts = held_out_prompts(task.data, task.held_out)[:limit]
    hits, diffs = [], []
    for start in range(0, len(prompts), batch):
        part = prompts[start:start + batch]
        rows = [task.encode(p.text) for p in part]  # BOS + the prompt, answer included
        grid = torch.full((len(rows), max(map(len, rows))), task.filler_id, device=probed.device)
        for i, r in enumerate(rows):
            grid[i, :len(r)] = torch.tensor(r)
        end = torch.tensor([len(r) - 2 for r in rows], device=probed.device)  # the token before the answer
        logits = probed.bridge(grid)[torch.arange(len(rows)), end]  # (b, V)
        io = torch.tensor([r[-1] for r in rows], device=probed.device)
        s = torch.tensor([task.vocab.encode(" " + p.s)[0] for p in part], device=probed.device)
        hits.append(logits.argmax(-1) == io)
        diffs.append(logits.gather(1, io[:, None])[:, 0] - logits.gather(1, s[:, None])[:, 0])
    return IOIScore(len(prompts), float(torch.cat(hits).float().mean()), float(torch.cat(diffs).mean()))
