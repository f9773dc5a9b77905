"""InversionView queries: sample inputs from the decoder, re-run them, rank by distance.

`run_query` streams results: after each chunk of candidates it calls `on_chunk` with the new
samples (distinct within the chunk); `QueryAccumulator` merges chunks into the final ranking.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from engine.decoder.files import load_decoder
from engine.decoder.model import ConditionalDecoder
from engine.decoder.sampling import DRAW_LOGITS, generate
from engine.errors import Cancelled, SiteError, StoreError
from engine.probed.model import ProbedModel
from engine.probed.reader import BridgeReader, SiteReader, fast_reader_for, reader_for
from engine.probed.sites import Site, get_site
from engine.query.distance import min_distance, position_distances
from engine.query.types import (
    QueryAccumulator,
    QueryChunk,
    QueryOptions,
    QueryResult,
    SampleResult,
    agreement,
    result_header,
)
from engine.runtime import bf16_pays
from engine.store.folders import ModelEntry, find_model, load_probed, no_decoder_message


@dataclass
class Inverter:
    """A probed model and its decoder, loaded once and queried many times."""

    entry: ModelEntry
    probed: ProbedModel
    decoder: ConditionalDecoder | None  # fp32: prob-diff colouring and evaluation; None: not trained yet
    sites: list[Site]  # the sites the decoder was trained on, in its site-embedding order
    reader: SiteReader | BridgeReader | None  # re-runs samples (without the bridge's hooks where it can)
    sampler: ConditionalDecoder | None = None  # the copy that samples (bf16 where it pays); None = decoder
    fast_reader: SiteReader | None = None  # a text model's bf16 re-run copy (near-epsilon rows re-checked)

    @property
    def can_query(self) -> bool:
        """Whether there is a decoder to sample from (a model without one still has sites and a flow graph)."""
        return self.decoder is not None

    @property
    def precision(self) -> str:
        """The precision of sampling (and of re-running, for a text model), as results record it."""
        if self.sampler is None:
            return "fp32"  # the only copies load_inverter makes are bfloat16
        return "bf16" if self.fast_reader is None else f"bf16, re-run in bf16 (fp32 within {EXACT_BAND:g} of epsilon)"

    @property
    def sampling_decoder(self) -> ConditionalDecoder:
        return self.sampler if self.sampler is not None else self.decoder

    def site_index(self, site: Site) -> int:
        for i, s in enumerate(self.sites):
            if s.id == site.id:
                return i
        trained = " ".join(s.short for s in self.sites)
        raise SiteError(f"the decoder of {self.entry.name!r} was not trained on site {site.short}; "
                        f"trained sites: {trained}")


def load_inverter(entry: ModelEntry | str, device=None, precision: str = "auto",
                  decoder_optional: bool = False) -> Inverter:
    """precision: 'fp32', 'bf16' (sample with a bfloat16 copy of the decoder) or 'auto' (bf16 on
    CUDA and on CPUs with bfloat16 instructions). decoder_optional: a model without a decoder
    loads too (the app's flow graph and sites need none); its queries say how to train one.

    For the synthetic tasks distances are always computed in fp32, so bf16 only changes which
    inputs are drawn. Sampling reads the whole key/value cache at every step, so halving its bytes
    pays: on this project's AMX CPU a counting query took 12% less time, with the same share of
    samples within epsilon (benchmarks/query_speed.py --precision). A GPT-2-style text model's
    samples are also re-run through a bf16 copy: the re-run is most of a text query, and bf16
    halves it (benchmarks/text_query_speed.py); distances then carry errors of a few thousandths
    (at most 0.005 in 1 - cosine, measured), so samples within EXACT_BAND of epsilon are re-run
    in fp32 and the epsilon line itself is exact."""
    entry = find_model(entry) if isinstance(entry, str) else entry
    probed = load_probed(entry, device=device)
    if decoder_optional and not entry.decoder:
        return Inverter(entry, probed, None, [], None)
    decoder, sites = load_decoder(entry, probed)
    inv = Inverter(entry, probed, decoder, sites, reader_for(probed))
    if precision == "bf16" or (precision == "auto" and bf16_pays(probed.device)):
        inv.sampler = copy.deepcopy(decoder).to(torch.bfloat16)
        inv.fast_reader = fast_reader_for(probed)
    return inv


COLOUR_ROWS = 32  # samples per teacher-forced colouring pass (each pass runs twice as many rows)
# At a text vocabulary the colouring costs more than the query (two teacher-forced passes over
# 50k logits per token: 13 ms a sample, 7.5 s for the 576 samples within 2 x epsilon of a 3.5 s
# query on a 4-layer model), so only the samples within epsilon, the ones a reader compares with
# the query, are coloured there (a sample that a larger epsilon brings in later stays plain).
COLOUR_NEAR_ONLY_VOCAB = 4096
COLOUR_NEAR = 1.0


def wants_colour(inv: Inverter, distance: float, epsilon: float) -> bool:
    """Whether a sample is coloured: every sample at a small vocabulary, at a text vocabulary
    (COLOUR_NEAR_ONLY_VOCAB) only those within COLOUR_NEAR x epsilon. run_query and the colouring
    on demand (engine/query/colour.py) both follow it."""
    return inv.decoder.cfg.d_vocab < COLOUR_NEAR_ONLY_VOCAB or distance <= COLOUR_NEAR * epsilon


def check_cancel(cancel: threading.Event | None) -> None:
    """Raises Cancelled when `cancel` is set: called between the groups of a chunk's scoring, so
    a Cancel is answered within one group's time (tens of milliseconds), not one chunk's."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("query cancelled")


@torch.inference_mode()
def token_prob_diff(decoder: ConditionalDecoder, tokens: torch.Tensor, z_q, z_bos, site_id: int,
                    pad_id: int, cancel: threading.Event | None = None) -> torch.Tensor:
    """(N, T) p(token | z_q) - p(token | z_BOS) under teacher forcing; 0 at BOS (docs/design.md §2).

    The samples are sorted by length and run in groups of COLOUR_ROWS, each cut to its own
    longest sample (the decoder is causal; 0.52 s to 0.27 s for a counting query's colouring,
    one thread); entries past a sample's end are 0. Raises Cancelled, before any group, when
    `cancel` is set.
    """
    out = torch.zeros(tokens.shape, device=tokens.device)
    for group, n in length_groups((tokens != pad_id).sum(dim=1), COLOUR_ROWS):
        check_cancel(cancel)
        out[group, :n] = _prob_diff(decoder, tokens[group, :n], z_q, z_bos, site_id)
    return out


def length_groups(lengths: torch.Tensor, rows: int):
    """Yields (row indices, n): samples of the given lengths (N,) sorted by length, `rows` at a
    time, with n the longest length in each group. A causal model run on tokens[group, :n] gives
    every sample the values it would get alone, with less padding and outputs small enough for cache."""
    for group in lengths.argsort().split(rows):
        yield group, int(lengths[group].max())


def token_probabilities(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """softmax(h @ weight.T)[target] for states h (..., d) and targets (...), DRAW_LOGITS logits at
    a time: at a text vocabulary the full (rows, 50k) softmax would not fit in cache (or memory)."""
    flat, want = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
    out = torch.empty(want.shape, device=h.device)
    rows = max(1, DRAW_LOGITS // weight.shape[0])
    for start in range(0, len(want), rows):
        part = slice(start, start + rows)
        logits = (flat[part] @ weight.T).float()  # (r, V)
        out[part] = (logits.gather(1, want[part, None])[:, 0] - logits.logsumexp(dim=1)).exp()
    return out.view(targets.shape)


def _prob_diff(decoder: ConditionalDecoder, tokens: torch.Tensor, z_q, z_bos, site_id: int) -> torch.Tensor:
    N = tokens.shape[0]
    both = torch.cat([tokens, tokens])  # (2N, T)
    z = torch.cat([z_q.expand(N, -1), z_bos.expand(N, -1)])  # (2N, d)
    site_ids = torch.full((2 * N,), site_id, dtype=torch.long, device=tokens.device)
    h = decoder.hidden(both[:, :-1], z, site_ids)  # (2N, T-1, d)
    p = token_probabilities(h, decoder.tok_emb.weight, both[:, 1:])  # (2N, T-1)
    diff = p[:N] - p[N:]
    return torch.cat([torch.zeros(N, 1, device=tokens.device), diff], dim=1)


def run_query(
    inv: Inverter,
    text: str,
    site: str | Site,
    position: int | str,
    options: QueryOptions = QueryOptions(),
    on_chunk: Callable[[QueryChunk], None] | None = None,
    cancel: threading.Event | None = None,
) -> QueryResult:
    """Rank decoder samples by how close their activation at `site` comes to the query's.

    Returns the merged, ranked result; `complete` is False when cancelled part way.
    """
    t0 = time.time()
    options.check()
    if not inv.can_query:
        raise StoreError(no_decoder_message(inv.entry))
    task, device = inv.probed.task, inv.probed.device
    ids = task.parse_query(text)
    site = site if isinstance(site, Site) else get_site(inv.probed.config, site)
    site_id = inv.site_index(site)
    pos = task.resolve_position(ids, position)

    query = torch.tensor([ids], device=device)
    acts_q = inv.reader.read(query, site)[0]  # (T, d)
    z_q, z_bos = acts_q[pos], acts_q[task.bos_position]
    acc = QueryAccumulator(result_header(inv.entry.name, task, ids, pos, site, options, inv.precision))

    gen = torch.Generator(device=device).manual_seed(options.seed)
    sched = options.schedule
    plan = torch.arange(options.candidates) % len(sched)  # round robin: every chunk mixes the schedule
    temps_all = torch.tensor([sched[i][0] for i in plan], device=device)
    etas_all = torch.tensor([sched[i][1] for i in plan], device=device)
    prob_cache: dict[tuple[int, ...], list[float]] = {}
    first_chunk = 0.0
    try:
        for start, end in options.chunks():
            check_cancel(cancel)
            temps, etas = temps_all[start:end], etas_all[start:end]
            n = len(temps)
            noise = torch.randn((n, z_q.numel()), generator=gen, device=device) * z_q.std() * etas[:, None]
            cond = z_q[None, :] + noise  # (n, d)
            sampler = inv.sampling_decoder
            site_ids = torch.full((n,), site_id, device=device)
            sampled = generate(sampler, cond.to(sampler.tok_emb.weight.dtype), site_ids, temps,
                               task.bos_id, task.decoder_eos_id, task.decoder_pad_id, generator=gen, cancel=cancel)
            # a chunk cancelled part way raises before anything of it reaches `acc`: the result holds whole chunks
            samples = _score_chunk(inv, site, site_id, sampled, temps, etas, z_q, z_bos, options, prob_cache,
                                   acc.header, cancel)
            chunk = QueryChunk(samples, start + n, options.candidates, time.time() - t0)
            acc.add(chunk)  # copies the samples, so the callback may keep the chunk
            first_chunk = first_chunk or chunk.elapsed
            if on_chunk:
                on_chunk(chunk)
        complete = True
    except Cancelled:
        complete = False
    result = acc.result(complete=complete)
    result.seconds = time.time() - t0
    result.first_chunk_seconds = first_chunk
    return result


RERUN_ROWS = 128  # samples per re-run group
EXACT_BAND = 0.02  # bf16 re-runs: samples this close to epsilon get their fp32 distance
SAMPLE_ROWS = 128  # distinct samples turned into SampleResults between two looks at the cancel event


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


def _score_chunk(inv: Inverter, site: Site, site_id: int, sampled, temps, etas, z_q, z_bos,
                 options: QueryOptions, prob_cache: dict, header: QueryResult,
                 cancel: threading.Event | None = None) -> list[SampleResult]:
    """Distinct samples of one chunk with distances, facts, prob-diff colouring and which of the
    query's features each shares (read at its own compared position).

    Raises Cancelled when `cancel` is set, checked between re-run and colouring groups and every
    SAMPLE_ROWS samples; what it leaves behind is whole (a prob_cache entry is a finished colouring)."""
    task = inv.probed.task
    # distinct by token ids, not by text: two token sequences may decode to the same string
    first: dict[tuple[int, ...], int] = {}  # model input -> first row that produced it
    counts: dict[tuple[int, ...], int] = {}
    for i, row in enumerate(sampled.cpu().tolist()):
        key = tuple(task.sample_ids(row))
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, i)

    # re-run each distinct sample once, as the model reads it, without the columns after the longest
    keys = list(first)
    lengths = torch.tensor([len(k) for k in keys], device=sampled.device)  # (U,)
    length = int(lengths.max())
    grid = torch.tensor([list(k) + [task.filler_id] * (length - len(k)) for k in keys], device=sampled.device)
    inside = torch.arange(length, device=sampled.device)[None, :] < lengths[:, None]  # (U, L)
    compared = torch.as_tensor(~task.special_mask(grid.cpu().numpy()), device=grid.device) & inside
    labels = [task.position_labels(list(k)) for k in keys]  # each sample's, once (the results show them too)
    if options.same_label:  # compare only where the sample has the query position's label
        want = header.query_labels[header.query_position]
        same = [[label == want for label in ls] + [False] * (length - len(ls)) for ls in labels]
        compared &= torch.tensor(same, device=grid.device)
    per_pos = rerun_distances(inv.fast_reader or inv.reader, site, grid, lengths, compared, z_q, options.metric,
                              cancel)
    dist, argmin = min_distance(per_pos)  # (U,), (U,)
    if inv.fast_reader is not None:  # the samples near the epsilon line, again in fp32
        near = ((dist - options.epsilon).abs() <= EXACT_BAND).nonzero()[:, 0]
        if len(near):
            per_pos[near] = rerun_distances(inv.reader, site, grid[near], lengths[near], compared[near], z_q,
                                            options.metric, cancel)
            dist, argmin = min_distance(per_pos)

    new = [u for u, k in enumerate(keys) if k not in prob_cache] if options.colour else []
    if new:  # at a text vocabulary the costly colouring only where it is read
        near = dist.cpu().tolist()
        new = [u for u in new if wants_colour(inv, near[u], options.epsilon)]
    if new:
        rows = torch.tensor([first[keys[u]] for u in new], device=sampled.device)
        diffs = token_prob_diff(inv.decoder, sampled[rows], z_q[None], z_bos[None], site_id,
                                task.decoder_pad_id, cancel).cpu().tolist()  # the decoder's own rows: its ids
        for u, d in zip(new, diffs):
            prob_cache[keys[u]] = d[:len(keys[u])]

    # one conversion to Python lists per chunk, not one per sample (about a thousand per query)
    per_pos = per_pos.masked_fill(per_pos.isinf(), float("nan")).cpu().tolist()  # NaN: not compared
    dist, argmin = dist.cpu().tolist(), argmin.cpu().tolist()
    temps, etas = temps.cpu().tolist(), etas.cpu().tolist()
    samples = []
    for u, key in enumerate(keys):
        if u % SAMPLE_ROWS == 0:
            check_cancel(cancel)
        i, n, tokens = first[key], len(key), list(key)
        text = task.vocab.decode(tokens)
        samples.append(SampleResult(
            text=text, tokens=tokens, labels=labels[u], multiplicity=counts[key],
            distance=dist[u], compared_position=argmin[u], position_distances=per_pos[u][:n],
            temperature=temps[i], noise=etas[i], fact=task.fact(tokens),
            # the check reads the input as a user types it: a text model's BOS is not part of the prompt
            well_formed=task.check(task.detokenize(tokens)).well_formed, prob_diff=prob_cache.get(key, []),
            pieces=task.vocab.token_strings(tokens),
            agrees=agreement(task, header.features, tokens, argmin[u], header.query_tokens)))
    return samples
