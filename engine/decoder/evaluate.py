"""Decoder quality, the paper's way: per site, 200 held-out queries, one T = 1 sample each;
the in-epsilon rate is the share of samples whose activation lands within D < epsilon."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..distance import min_distance, position_distances
from ..sites import read_site
from .pairs import random_positions
from .sampling import generate


@dataclass
class SiteQuality:
    site: str
    in_epsilon: float  # share of samples with D < epsilon
    well_formed: float  # share of samples that are well-formed task inputs


@dataclass
class DecoderQuality:
    n_queries: int
    epsilon: float
    sites: list[SiteQuality] = field(default_factory=list)
    count_agreement: float | None = None  # counting x1.post at ':': in-epsilon samples with the query's count
    count_agreement_n: int = 0

    @property
    def average(self) -> float:
        return float(np.mean([s.in_epsilon for s in self.sites])) if self.sites else 0.0

    @property
    def well_formed(self) -> float:
        return float(np.mean([s.well_formed for s in self.sites])) if self.sites else 0.0


@torch.inference_mode()
def _sample_once(inv, site, queries: np.ndarray, positions: np.ndarray, epsilon: float, gen):
    """For each query, one T = 1 sample; returns (in-epsilon flags, well-formed flags, sample rows)."""
    task, device = inv.probed.task, inv.probed.device
    toks = torch.as_tensor(queries, device=device)
    acts = read_site(inv.probed.bridge, toks, site)  # (N, T, d)
    z = acts[torch.arange(len(queries), device=device), torch.as_tensor(positions, device=device)]  # (N, d)
    n = len(queries)
    site_ids = torch.full((n,), inv.site_index(site), device=device)
    sampled = generate(inv.decoder, z, site_ids, torch.ones(n, device=device),
                       task.bos_id, task.eos_id, task.pad_id, generator=gen)
    s_acts = read_site(inv.probed.bridge, sampled, site)
    compared = torch.as_tensor(~task.special_mask(sampled.cpu().numpy()), device=device)
    dist, _ = min_distance(position_distances(z, s_acts, compared, "euclidean"))
    rows = sampled.cpu().tolist()
    well = np.array([task.check(task.detokenize(r)).well_formed for r in rows])
    return (dist < epsilon).cpu().numpy(), well, rows


def evaluate_decoder(inv, n_queries: int = 200, epsilon: float = 0.1, seed: int = 0, progress=None) -> DecoderQuality:
    task = inv.probed.task
    rng = np.random.default_rng(seed)
    test = task.split(0).test
    queries = test[rng.choice(len(test), size=n_queries, replace=False)]
    gen = torch.Generator(device=inv.probed.device).manual_seed(seed)
    quality = DecoderQuality(n_queries, epsilon)
    for i, site in enumerate(inv.sites):
        positions = random_positions(task, queries, rng)
        positions = np.where(positions == 0, task.decoder_positions(queries).argmax(axis=1), positions)  # no BOS
        inside, well, _ = _sample_once(inv, site, queries, positions, epsilon, gen)
        quality.sites.append(SiteQuality(site.short, float(inside.mean()), float(well.mean())))
        if progress:
            progress(i + 1, len(inv.sites))
    if task.name == "counting" and any(s.short == "x1.post" for s in inv.sites):
        site = next(s for s in inv.sites if s.short == "x1.post")
        colon = (queries == task.colon_id).argmax(axis=1)
        inside, _, rows = _sample_once(inv, site, queries, colon, epsilon, gen)
        agree = [task.fact(rows[i]) == task.fact(queries[i]) for i in np.flatnonzero(inside)]
        quality.count_agreement_n = len(agree)
        quality.count_agreement = float(np.mean(agree)) if agree else None
    return quality
