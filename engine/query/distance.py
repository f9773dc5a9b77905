"""Distances between a query activation and a candidate's activations (docs/design.md §2)."""
from __future__ import annotations

import torch


def position_distances(z_q: torch.Tensor, acts: torch.Tensor, compared: torch.Tensor, metric: str) -> torch.Tensor:
    """(N, T) distances, +inf where a position is not compared (BOS, EOS, PAD).

    z_q: (d,) or (N, d) query activation(s); acts: (N, T, d); compared: (N, T) bool.
    euclidean: ||z - z_q|| / ||z_q||; cosine: 1 - cos(z_q, z).
    """
    z_q = z_q.float()
    acts = acts.float()
    q = z_q.reshape(-1, 1, acts.shape[-1]) if z_q.dim() == 2 else z_q.reshape(1, 1, -1)  # (N|1, 1, d)
    if metric == "euclidean":
        d = (acts - q).norm(dim=-1) / q.norm(dim=-1).clamp_min(1e-12)
    elif metric == "cosine":
        d = 1.0 - torch.nn.functional.cosine_similarity(acts, q.expand_as(acts), dim=-1, eps=1e-12)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return d.masked_fill(~compared, float("inf"))


def min_distance(per_position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) minimum distance over positions and (N,) the position where it is reached."""
    return per_position.min(dim=1)
