"""Training pairs for the decoder, made on the fly: (input, activation at a random site and
position of that input). 1% of positions are replaced by BOS, which teaches the decoder that
the BOS activation says nothing (the prob-diff colouring relies on it).

Each batch runs the model once, only as deep as the deepest site drawn, and keeps only the one
vector per input that the pair needs (sites.read_rows)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.probed.model import ProbedModel
from engine.probed.sites import Site, read_rows

BOS_SHARE = 0.01


@dataclass
class PairBatch:
    tokens: torch.Tensor  # (B, n_ctx) the inputs to generate, in the decoder's ids
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
               site_probs: np.ndarray | None = None, rows: slice = slice(None)) -> PairBatch:
    """One pair per input (decoder rows, (B, T)); its site drawn from `site_probs` (uniform when None).

    rows: the part of the batch to make (a rank's share under torchrun); the draws are made for
    the whole batch, so the pairs do not depend on how many processes share it."""
    device = probed.device
    task = probed.task
    B = len(tokens)
    site_ids = rng.choice(len(sites), size=B, p=site_probs)[rows]
    positions = random_positions(task, tokens, rng)[rows]
    tokens = tokens[rows]
    site_ids, positions = torch.as_tensor(site_ids, device=device), torch.as_tensor(positions, device=device)
    model_input = torch.as_tensor(task.model_grid(tokens), device=device)
    z = read_rows(probed.bridge, model_input, sites, site_ids, positions)  # (b, d)
    return PairBatch(torch.as_tensor(tokens, device=device), z.clone(), site_ids, positions)
