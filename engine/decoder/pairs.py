"""Training pairs for the decoder, made on the fly: (input, activation at a random site and
position of that input). 1% of positions are replaced by BOS, which teaches the decoder that
the BOS activation says nothing (the prob-diff colouring relies on it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.probed.model import ProbedModel
from engine.probed.sites import Site, read_sites

BOS_SHARE = 0.01


@dataclass
class PairBatch:
    tokens: torch.Tensor  # (B, n_ctx) the inputs to generate
    z: torch.Tensor  # (B, d_act) activation of each input at its site and position
    site_ids: torch.Tensor  # (B,) index into the decoder's site list
    positions: torch.Tensor  # (B,) where z was read


def random_positions(task, tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B,) one allowed position per input, BOS for BOS_SHARE of them."""
    allowed = task.decoder_positions(tokens)  # (B, T) bool
    keys = rng.random(allowed.shape) + allowed  # allowed positions score in [1, 2)
    pos = keys.argmax(axis=1)
    pos[rng.random(len(pos)) < BOS_SHARE] = task.bos_position
    return pos


def make_pairs(probed: ProbedModel, sites: list[Site], tokens: np.ndarray, rng: np.random.Generator,
               site_probs: np.ndarray | None = None) -> PairBatch:
    """One pair per input; its site drawn from `site_probs` (uniform when None)."""
    device = probed.device
    toks = torch.as_tensor(tokens, device=device)
    acts = read_sites(probed.bridge, toks, sites)  # {short: (B, T, d)}
    stacked = torch.stack([acts[s.short] for s in sites])  # (S, B, T, d)
    B = len(tokens)
    site_ids = torch.as_tensor(rng.choice(len(sites), size=B, p=site_probs), device=device)
    positions = torch.as_tensor(random_positions(probed.task, tokens, rng), device=device)
    z = stacked[site_ids, torch.arange(B, device=device), positions]  # (B, d)
    return PairBatch(toks, z.clone(), site_ids, positions)
