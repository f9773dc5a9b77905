"""InversionView queries: sample inputs from the decoder, re-run them, rank by distance.

`run_query` streams results: after each chunk of candidates it calls `on_chunk` with the new
samples (distinct within the chunk); `QueryAccumulator` merges chunks into the final ranking.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from engine.decoder.files import load_decoder
from engine.decoder.model import ConditionalDecoder
from engine.decoder.sampling import DRAW_LOGITS, generate
from engine.errors import Cancelled, SiteError, StoreError
from engine.probed.model import ProbedModel
from engine.probed.reader import BridgeReader, SiteReader, fast_reader_for, reader_for
from engine.probed.sites import Site, get_site
from engine.query.score import EXACT_BAND, check_cancel, distances, length_groups, sample_results
from engine.query.types import (
    QueryAccumulator,
    QueryChunk,
    QueryOptions,
    QueryResult,
    SampleResult,
    result_header,
    sampler_for,
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
    search_reader: SiteReader | None = None  # text models: the search's (weights shared, engine/search/ragged.py)

    @property
    def can_query(self) -> bool:
        """Whether queries can run: always, through the local search where there is no decoder."""
        return self.reader is not None

    @property
    def has_decoder(self) -> bool:
        """Whether a decoder was trained (sampling from it, prob-diff colours, the base-rate summary)."""
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


def load_inverter(entry: ModelEntry | str, device: str | torch.device | None = None,
                  precision: str = "auto", decoder_optional: bool = False) -> Inverter:
    """The model under study and its decoder, loaded once to be queried many times
    (run_query). entry: a ModelEntry or a name, folder or cache id (find_model); device: "cpu",
    "cuda", ... (default: the best available).

    precision: 'fp32', 'bf16' (sample with a bfloat16 copy of the decoder) or 'auto' (bf16 on
    CUDA, and on a CPU where bf16 products measure faster: engine/runtime.py). decoder_optional: a
    model without a decoder loads too; the local search queries it (engine/search/).

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
    if decoder_optional and not entry.decoder:  # the local search still queries it (engine/search/)
        return Inverter(entry, probed, None, [], reader_for(probed))
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
    """Rank candidate inputs by how close their activation at `site` comes to the query's.

    The candidates come from the decoder or the local search (options.sampler; `choose_sampler`).
    Returns the merged, ranked result; `complete` is False when cancelled part way.
    """
    t0 = time.time()
    options.check()
    task, device = inv.probed.task, inv.probed.device
    ids = task.parse_query(text)
    site = site if isinstance(site, Site) else get_site(inv.probed.config, site)
    sampler = choose_sampler(inv, site, options.sampler)
    pos = task.resolve_position(ids, position)

    query = torch.tensor([ids], device=device)
    acts_q = inv.reader.read(query, site)[0]  # (T, d)
    z_q, z_bos = acts_q[pos], acts_q[task.bos_position]
    header = result_header(inv.entry.name, task, ids, pos, site, options, inv.precision)
    acc = QueryAccumulator(header)
    first_chunk: list[float] = []

    def streamed(chunk: QueryChunk) -> None:
        first_chunk[:] = first_chunk or [chunk.elapsed]
        if on_chunk:
            on_chunk(chunk)

    try:
        if sampler == "search":
            search = _search(inv, ids, pos, site, z_q, options, acc)
            search.run(acc, streamed, cancel, t0)
        else:
            _decoder_chunks(inv, site, z_q, z_bos, options, acc, streamed, cancel, t0)
            done = acc.result()
            if options.sampler == "auto" and done.in_epsilon_count < SEARCH_BELOW * done.candidates_done:
                # the decoder barely reaches this site: the search goes on from its in-epsilon samples
                seeds = [(s.tokens, s.compared_position) for s in done.samples if s.in_epsilon]
                search = _search(inv, ids, pos, site, z_q, options, acc, seeds,
                                 f"after the decoder ({done.in_epsilon_count} of {done.candidates_done} candidates "
                                 f"within epsilon, under {SEARCH_BELOW:.0%}; its samples stay in the result), "
                                 f"seeded by its {len(seeds)} samples within epsilon: ")
                search.run(acc, streamed, cancel, t0)
        complete = True
    except Cancelled:
        complete = False
    result = acc.result(complete=complete)
    result.seconds = time.time() - t0
    result.first_chunk_seconds = first_chunk[0] if first_chunk else 0.0
    return result


SEARCH_BELOW = 0.05  # auto: the decoder's in-epsilon share under which the search goes on from its samples


def _search(inv: Inverter, ids, pos: int, site: Site, z_q, options: QueryOptions, acc: QueryAccumulator,
            seeds=(), before: str = ""):
    """A LocalSearch for the query; the result's header (in `acc`) then says the search drew it."""
    from engine.search.local import LocalSearch

    search = LocalSearch(inv, ids, pos, site, z_q, options, seeds)
    acc.header = replace(acc.header, sampler="search", sampler_settings=before + search.settings, schedule="",
                         precision="fp32")
    return search


def choose_sampler(inv: Inverter, site: Site, asked: str) -> str:
    """'decoder' or 'search' for a query at `site`: auto takes the decoder where it was trained on
    the site, else the search; asking for the decoder where there is none is a StoreError (or a
    SiteError naming the trained sites)."""
    if sampler_for(asked, inv.decoder is not None and any(s.id == site.id for s in inv.sites)) == "search":
        return "search"
    if inv.decoder is None:
        raise StoreError(no_decoder_message(inv.entry) + "; or use the local search (sampler 'search')")
    inv.site_index(site)  # raises, naming the trained sites
    return "decoder"


def _decoder_chunks(inv: Inverter, site: Site, z_q, z_bos, options: QueryOptions, acc: QueryAccumulator,
                    on_chunk: Callable[[QueryChunk], None], cancel, t0: float) -> None:
    """Samples the decoder chunk by chunk into `acc`, each chunk passed to `on_chunk`."""
    task, device = inv.probed.task, inv.probed.device
    site_id = inv.site_index(site)
    gen = torch.Generator(device=device).manual_seed(options.seed)
    sched = options.schedule
    plan = torch.arange(options.candidates) % len(sched)  # round robin: every chunk mixes the schedule
    temps_all = torch.tensor([sched[i][0] for i in plan], device=device)
    etas_all = torch.tensor([sched[i][1] for i in plan], device=device)
    prob_cache: dict[tuple[int, ...], list[float]] = {}
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
        on_chunk(chunk)


def _score_chunk(inv: Inverter, site: Site, site_id: int, sampled, temps, etas, z_q, z_bos,
                 options: QueryOptions, prob_cache: dict, header: QueryResult,
                 cancel: threading.Event | None = None) -> list[SampleResult]:
    """Distinct samples of one chunk of decoder rows with distances, facts, prob-diff colouring
    and which of the query's features each shares (engine/query/score.py).

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
    keys = list(first)
    scored = distances(inv, site, keys, z_q, options, header, cancel)

    new = [u for u, k in enumerate(keys) if k not in prob_cache] if options.colour else []
    if new:  # at a text vocabulary the costly colouring only where it is read
        near = scored.distance.cpu().tolist()
        new = [u for u in new if wants_colour(inv, near[u], options.epsilon)]
    if new:
        rows = torch.tensor([first[keys[u]] for u in new], device=sampled.device)
        diffs = token_prob_diff(inv.decoder, sampled[rows], z_q[None], z_bos[None], site_id,
                                task.decoder_pad_id, cancel).cpu().tolist()  # the decoder's own rows: its ids
        for u, d in zip(new, diffs):
            prob_cache[keys[u]] = d[:len(keys[u])]

    temps, etas = temps.cpu().tolist(), etas.cpu().tolist()
    return sample_results(task, scored, header, [counts[k] for k in keys], [temps[first[k]] for k in keys],
                          [etas[first[k]] for k in keys], [prob_cache.get(k, []) for k in keys], cancel=cancel)
