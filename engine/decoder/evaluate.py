"""Decoder quality, the paper's way: per site, 200 held-out queries, one T = 1 sample each;
the in-epsilon rate is the share of samples whose activation lands within D < epsilon."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.decoder.pairs import random_positions
from engine.decoder.sampling import generate
from engine.probed.sites import read_site
from engine.query.distance import min_distance, position_distances

if TYPE_CHECKING:
    from engine.query.run import Inverter


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
    count_agreement: float | None = None  # the task's agreement probe: in-epsilon samples sharing the query's fact
    count_agreement_n: int = 0

    @property
    def average(self) -> float:
        return float(np.mean([s.in_epsilon for s in self.sites])) if self.sites else 0.0

    @property
    def well_formed(self) -> float:
        return float(np.mean([s.well_formed for s in self.sites])) if self.sites else 0.0


@torch.inference_mode()
def _sample_once(probed, decoder, site_index: int, site, queries: np.ndarray, positions: np.ndarray,
                 epsilon: float, gen, metric: str):
    """For each query (decoder rows), one T = 1 sample; returns (in-epsilon flags, well-formed
    flags, the samples' model inputs)."""
    task, device = probed.task, probed.device
    toks = torch.as_tensor(task.model_grid(queries), device=device)
    acts = read_site(probed.bridge, toks, site)  # (N, T, d)
    z = acts[torch.arange(len(queries), device=device), torch.as_tensor(positions, device=device)]  # (N, d)
    n = len(queries)
    site_ids = torch.full((n,), site_index, device=device)
    sampled = generate(decoder, z, site_ids, torch.ones(n, device=device),
                       task.bos_id, task.decoder_eos_id, task.decoder_pad_id, generator=gen).cpu().numpy()
    s_acts = read_site(probed.bridge, torch.as_tensor(task.model_grid(sampled), device=device), site)
    compared = torch.as_tensor(~task.special_mask(sampled), device=device)
    dist, _ = min_distance(position_distances(z, s_acts, compared, metric))
    rows = [task.sample_ids(r) for r in sampled]
    well = np.array([task.check(task.detokenize(r)).well_formed for r in rows])
    return (dist < epsilon).cpu().numpy(), well, rows


def evaluate_decoder(inv: Inverter, held_out: np.ndarray, n_queries: int = 200, epsilon: float = 0.1,
                     seed: int = 0, progress: Callable[[int, int], None] | None = None,
                     metric: str | None = None) -> DecoderQuality:
    """The paper's test on held-out inputs, for a loaded Inverter: held_out is (N, T) token ids
    (decoder rows), of which n_queries are drawn as the queries (the same at every site); each
    query's activation at a site is decoded and the decoded input re-run; the quality is each
    site's share of decoded inputs within epsilon (0 to 1) in `metric` (default: the task's), and
    the share that are well formed.
    progress(done, total) after each site."""
    return measure_quality(inv.probed, inv.decoder, inv.sites, held_out, n_queries, epsilon, seed, progress, metric)


def measure_quality(probed, decoder, sites, pool: np.ndarray, n_queries: int = 200, epsilon: float = 0.1,
                    seed: int = 0, progress=None, metric: str | None = None, tested: list[int] | None = None,
                    enough=None, agreement: bool = True) -> DecoderQuality:
    """Per-site in-epsilon rates of `decoder` (its site embedding in the order of `sites`) on
    queries drawn from `pool` (decoder rows): held-out inputs for the reported figures,
    training inputs for the checks during training (the held-out ones stay untouched).
    Distances are `metric`, by default the task's (1 - cosine for text models, as the paper's
    GPT-2 test; normalised Euclidean for the synthetic tasks).

    tested: the indices into `sites` to test, in this order (default: all); enough(done) is asked
    after each site and ends the test early when true (the sites done so far are the result);
    progress(done, total) is called after each site. agreement: also run the task's agreement
    probe (the in-training checks leave it out: they do not use it)."""
    task = probed.task
    metric = metric or task.query_metric
    rng = np.random.default_rng(seed)
    queries = pool[rng.choice(len(pool), size=min(n_queries, len(pool)), replace=False)]
    n_queries = len(queries)
    gen = torch.Generator(device=probed.device).manual_seed(seed)
    quality = DecoderQuality(n_queries, epsilon)
    was_training = decoder.training
    decoder.eval()
    order = list(range(len(sites))) if tested is None else list(tested)
    for done, i in enumerate(order, start=1):
        site = sites[i]
        positions = random_positions(task, queries, rng)
        positions = np.where(positions == 0, task.decoder_positions(queries).argmax(axis=1), positions)  # no BOS
        inside, well, _ = _sample_once(probed, decoder, i, site, queries, positions, epsilon, gen, metric)
        quality.sites.append(SiteQuality(site.short, float(inside.mean()), float(well.mean())))
        if progress:
            progress(done, len(order))
        if enough is not None and done < len(order) and enough(done):
            break
    probe = task.agreement_probe() if agreement else None
    if probe is not None and any(s.short == probe.site for s in sites):
        index = next(i for i, s in enumerate(sites) if s.short == probe.site)
        at = probe.position_of(queries)
        inside, _, rows = _sample_once(probed, decoder, index, sites[index], queries, at, epsilon, gen, metric)
        agree = [task.fact(rows[i]) == task.fact(queries[i]) for i in np.flatnonzero(inside)]
        quality.count_agreement_n = len(agree)
        quality.count_agreement = float(np.mean(agree)) if agree else None
    decoder.train(was_training)
    return quality
