"""Scoring candidate inputs: re-run each through the probed model, measure its distance to the
query's activation, and turn it into a SampleResult.

Both candidate sources (the decoder, engine/query/run.py; the local search, engine/search/)
score through `score_inputs`, so their samples are ranked, exported and summarised alike.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from engine.errors import Cancelled
from engine.probed.reader import BridgeReader, SiteReader
from engine.probed.sites import Site
from engine.query.distance import min_distance, position_distances
from engine.query.types import QueryOptions, QueryResult, SampleResult, agreement

RERUN_ROWS = 128  # samples per re-run group
EXACT_BAND = 0.02  # bf16 re-runs: samples this close to epsilon get their fp32 distance
SAMPLE_ROWS = 128  # distinct samples turned into SampleResults between two looks at the cancel event


def check_cancel(cancel: threading.Event | None) -> None:
    """Raises Cancelled when `cancel` is set: called between the groups of a chunk's scoring, so
    a Cancel is answered within one group's time (tens of milliseconds), not one chunk's."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("query cancelled")


def length_groups(lengths: torch.Tensor, rows: int):
    """Yields (row indices, n): samples of the given lengths (N,) sorted by length, `rows` at a
    time, with n the longest length in each group. A causal model run on tokens[group, :n] gives
    every sample the values it would get alone, with less padding and outputs small enough for cache."""
    for group in lengths.argsort().split(rows):
        yield group, int(lengths[group].max())


def rerun_distances(reader: SiteReader | BridgeReader, site: Site, tokens, lengths, compared, z_q,
                    metric: str, cancel: threading.Event | None = None) -> torch.Tensor:
    """(U, L) per-position distances of re-run samples (model inputs, (U, L), of `lengths` (U,)),
    +inf where not compared.

    The samples are sorted by length and re-run in groups of RERUN_ROWS, each cut to its own
    longest sample: the model is causal, so the padding after a sample never changes its
    activations, and counting samples vary from 9 to 33 tokens. Small groups also keep each
    product's output in cache: 1,024 counting samples took 104 ms in one batch and 54 ms in
    groups of 128 to 256 (one thread). Raises Cancelled, before any group, when `cancel` is set.
    """
    per_pos = torch.full(tokens.shape, float("inf"), device=tokens.device)
    for group, n in length_groups(lengths, RERUN_ROWS):
        check_cancel(cancel)
        acts = reader.read(tokens[group, :n], site)  # (g, n, d) only up to the site's layer
        per_pos[group, :n] = position_distances(z_q, acts, compared[group, :n], metric)
    return per_pos


@dataclass
class Scored:
    """Distances of distinct inputs, before they become SampleResults."""

    keys: list[tuple[int, ...]]  # the inputs, as the model reads them
    per_pos: torch.Tensor  # (U, L) per-position distances, +inf where not compared
    distance: torch.Tensor  # (U,) min over compared positions
    compared_at: torch.Tensor  # (U,) the argmin position
    labels: list[list[str]]  # each input's position labels


def compared_grid(task, keys: list[tuple[int, ...]], options: QueryOptions, header: QueryResult, device):
    """(grid (U, L) of the inputs padded with the filler, lengths (U,), compared (U, L) bool, labels):
    an input is compared at its positions but the special ones (or only where its label is the
    query position's, with same_label)."""
    lengths = torch.tensor([len(k) for k in keys], device=device)  # (U,)
    length = int(lengths.max())
    grid = torch.tensor([list(k) + [task.filler_id] * (length - len(k)) for k in keys], device=device)
    inside = torch.arange(length, device=device)[None, :] < lengths[:, None]  # (U, L)
    compared = torch.as_tensor(~task.special_mask(grid.cpu().numpy()), device=device) & inside
    labels = [task.position_labels(list(k)) for k in keys]  # each sample's, once (the results show them too)
    if options.same_label:  # compare only where the sample has the query position's label
        want = header.query_labels[header.query_position]
        same = [[label == want for label in ls] + [False] * (length - len(ls)) for ls in labels]
        compared &= torch.tensor(same, device=device)
    return grid, lengths, compared, labels


def scored_from(task, keys: list[tuple[int, ...]], raw: list[torch.Tensor], options: QueryOptions,
                header: QueryResult) -> Scored:
    """Scored inputs from distances already measured at every position (raw[u]: (len(keys[u]),)),
    masked to the compared positions as `distances` masks them."""
    device = raw[0].device
    _, _, compared, labels = compared_grid(task, keys, options, header, device)
    per_pos = torch.full(compared.shape, float("inf"), device=device)
    for u, values in enumerate(raw):
        per_pos[u, :len(values)] = values.float()
    per_pos = per_pos.masked_fill(~compared, float("inf"))
    dist, argmin = min_distance(per_pos)
    return Scored(keys, per_pos, dist, argmin, labels)


def distances(inv, site: Site, keys: list[tuple[int, ...]], z_q, options: QueryOptions, header: QueryResult,
              cancel: threading.Event | None = None, exact: bool = False) -> Scored:
    """Re-runs distinct inputs (model ids, BOS..end) and measures each against z_q (d,), by the
    options' metric, at every compared position (or only where the label is the query position's).
    exact: always the fp32 reader (the local search steers by every distance, not only epsilon's)."""
    grid, lengths, compared, labels = compared_grid(inv.probed.task, keys, options, header, z_q.device)
    fast = None if exact else getattr(inv, "fast_reader", None)
    per_pos = rerun_distances(fast or inv.reader, site, grid, lengths, compared, z_q, options.metric, cancel)
    dist, argmin = min_distance(per_pos)  # (U,), (U,)
    if fast is not None:  # the samples near the epsilon line, again in fp32
        near = ((dist - options.epsilon).abs() <= EXACT_BAND).nonzero()[:, 0]
        if len(near):
            per_pos[near] = rerun_distances(inv.reader, site, grid[near], lengths[near], compared[near], z_q,
                                            options.metric, cancel)
            dist, argmin = min_distance(per_pos)
    return Scored(keys, per_pos, dist, argmin, labels)


def sample_results(task, scored: Scored, header: QueryResult, counts: list[int], temps: list[float],
                   etas: list[float], prob_diffs: list[list[float]], edits: list[int] | None = None,
                   cancel: threading.Event | None = None) -> list[SampleResult]:
    """The scored inputs as SampleResults, with facts, checks and which query features each shares
    (read at its own compared position). The per-input lists run parallel to scored.keys."""
    # one conversion to Python lists per chunk, not one per sample (about a thousand per query)
    per_pos = scored.per_pos.masked_fill(scored.per_pos.isinf(), float("nan")).cpu().tolist()  # NaN: not compared
    dist, argmin = scored.distance.cpu().tolist(), scored.compared_at.cpu().tolist()
    samples = []
    for u, key in enumerate(scored.keys):
        if u % SAMPLE_ROWS == 0:
            check_cancel(cancel)
        tokens = list(key)
        samples.append(SampleResult(
            text=task.vocab.decode(tokens), tokens=tokens, labels=scored.labels[u], multiplicity=counts[u],
            distance=dist[u], compared_position=argmin[u], position_distances=per_pos[u][:len(key)],
            temperature=temps[u], noise=etas[u], fact=task.fact(tokens),
            # the check reads the input as a user types it: a text model's BOS is not part of the prompt
            well_formed=task.check(task.detokenize(tokens)).well_formed, prob_diff=prob_diffs[u],
            pieces=task.vocab.token_strings(tokens), edits=-1 if edits is None else edits[u],
            agrees=agreement(task, header.features, tokens, argmin[u], header.query_tokens)))
    return samples
