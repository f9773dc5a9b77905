"""What an InversionView query takes and gives back: plain dataclasses, no tensors.

`run_query` (engine/query.py) streams `QueryChunk`s to a callback; a `QueryAccumulator` merges
them into the ranked `QueryResult` (the app keeps one to paint rows as chunks arrive).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from engine.tasks.base import TaskInputError

# The paper's "Auto" schedule: (temperature, noise eta), 256 candidates each (docs/design.md §2).
AUTO_SCHEDULE: tuple[tuple[float, float], ...] = ((0.5, 0.0), (1.0, 0.0), (2.0, 0.0), (2.0, 0.1))
# The paper's schedule for text models (its GPT-2 queries): 256 candidates each, so 768 in all.
TEXT_SCHEDULE: tuple[tuple[float, float], ...] = ((0.5, 0.0), (1.0, 0.0), (1.0, 0.1))
SCHEDULES = {"auto": AUTO_SCHEDULE, "text": TEXT_SCHEDULE}
METRICS = ("euclidean", "cosine")  # ||z - z_q|| / ||z_q||, or 1 - cos(z_q, z)
# Where candidates come from: the trained decoder, the training-free local search around the query
# (engine/search/), or auto: the decoder where it was trained on the site, else the search.
SAMPLERS = ("auto", "decoder", "search")


def sampler_for(asked: str, trained_on_site: bool) -> str:
    """The source a query at a site uses: "search" when asked, or under "auto" where no decoder
    was trained on the site; else "decoder" (whether there is one is the caller's to check)."""
    return "search" if asked == "search" or (asked == "auto" and not trained_on_site) else "decoder"


@dataclass(frozen=True)
class QueryOptions:
    """How one InversionView query draws and judges its candidates (frozen; change with
    dataclasses.replace). candidates: how many inputs to draw (1-65536); schedule: (temperature,
    noise) pairs the decoder's candidates are split across evenly; metric: "euclidean"
    (||z - z_q|| / ||z_q||, a ratio) or "cosine" (1 - cos(z, z_q), 0 to 2); epsilon: the distance
    under which a sample counts as "within epsilon", in the metric's units; seed: the same seed
    gives the same samples; sampler: "auto", "decoder" or "search".
    """

    candidates: int = 1024
    schedule: tuple[tuple[float, float], ...] = AUTO_SCHEDULE  # split evenly across the entries
    metric: str = "euclidean"
    epsilon: float = 0.1
    seed: int = 0
    # candidates generated per streamed chunk: bigger means less per-step overhead; with the bf16
    # key/value cache, 512 took 15% less time per query than 256 (benchmarks/query_speed.py)
    chunk_size: int = 512
    first_chunk_size: int = 64  # the first chunk is small, so the first rows show quickly
    colour: bool = True  # compute the per-token prob-diff colouring (two teacher-forced decoder passes)
    # Compare a sample only at positions that have the query position's label (IOI: END; counting:
    # ':'; a text model: the same token), not at every position (the paper's rule). In a small model
    # the last residual stream at any ' to' lies within 1 - cos 0.1 of END's, so the paper's min over
    # positions lets mid-sentence tokens in; a sample without the label is never within epsilon.
    same_label: bool = False
    sampler: str = "auto"  # one of SAMPLERS
    # the local search's settings (engine/search/local.py); `candidates` is its budget of re-run rows
    chains: int = 64  # chains stepped together: one proposal each per step
    search_temperature: float = 0.25  # Metropolis temperature inside the epsilon wall, in units of epsilon
    grammar: bool = True  # drop proposals the task's grammar rejects before re-running them (where it has one)
    keep: tuple[int, ...] = ()  # query positions the search never changes ("keep these tokens")

    def chunks(self) -> list[tuple[int, int]]:
        """(start, end) candidate ranges: a small first chunk, then chunk_size each."""
        bounds, start = [], 0
        size = min(self.first_chunk_size, self.chunk_size)
        while start < self.candidates:
            end = min(start + size, self.candidates)
            bounds.append((start, end))
            start, size = end, self.chunk_size
        return bounds

    def check(self) -> None:
        if self.metric not in METRICS:
            raise TaskInputError(f"unknown metric {self.metric!r}; allowed: {', '.join(METRICS)}")
        if not 1 <= self.candidates <= 65536:
            raise TaskInputError(f"candidates must be 1-65536, got {self.candidates}")
        if not self.epsilon > 0 or not math.isfinite(self.epsilon):
            raise TaskInputError(f"epsilon must be a positive number, got {self.epsilon}")
        if self.chunk_size < 1 or self.first_chunk_size < 1:
            raise TaskInputError(f"chunk sizes must be at least 1, got {self.first_chunk_size} and {self.chunk_size}")
        if self.sampler not in SAMPLERS:
            raise TaskInputError(f"unknown sampler {self.sampler!r}; allowed: {', '.join(SAMPLERS)}")
        if not 1 <= self.chains <= 4096:
            raise TaskInputError(f"chains must be 1-4096, got {self.chains}")
        if not (self.search_temperature >= 0 and math.isfinite(self.search_temperature)):
            raise TaskInputError(f"the search temperature must be 0 or more, got {self.search_temperature}")
        if not self.schedule:
            raise TaskInputError("the schedule needs at least one (temperature, noise) entry")
        for t, eta in self.schedule:
            if not (t > 0 and eta >= 0):
                raise TaskInputError(f"temperatures must be > 0 and noise >= 0, got ({t}, {eta})")


@dataclass
class SampleResult:
    """One distinct sampled input, compared with the query activation."""

    text: str  # BOS..EOS, e.g. "Bmbombmbobo|m:3E"
    tokens: list[int]  # token ids, BOS first
    labels: list[str]  # position labels of the sample
    multiplicity: int  # how many candidates produced exactly this input
    distance: float  # min over compared positions, in the metric's units (QueryOptions.metric)
    compared_position: int  # argmin position (a token index, BOS at 0)
    position_distances: list[float]  # per position; nan where not compared (BOS/EOS/PAD)
    temperature: float  # of the first candidate that produced it
    noise: float
    fact: str  # counting: the query letter's count; addition: right/wrong/malformed
    well_formed: bool
    prob_diff: list[float] = field(default_factory=list)  # per token: p(tok | z_q) - p(tok | z_BOS); empty if not asked
    in_epsilon: bool = False
    rank: int = 0  # 1-based, by distance
    pieces: list[str] = field(default_factory=list)  # each token's text (the tokenizer's token_strings)
    agrees: int = 0  # bit i set: the sample's value of the result's feature i equals the query's (engine/explain)
    edits: int = -1  # tokens changed from the query (the local search's samples; -1: not measured)

    def marked(self) -> str:
        """The sample with spaces between tokens and the compared token in parentheses."""
        pieces = list(self.pieces)
        pieces[self.compared_position] = f"({pieces[self.compared_position]})"
        return " ".join(pieces)


@dataclass
class QueryChunk:
    """Candidates finished since the last chunk, not yet merged with earlier ones."""

    samples: list[SampleResult]  # distinct within the chunk, multiplicities within the chunk
    done: int  # candidates finished so far (this chunk included)
    total: int
    elapsed: float


@dataclass
class QueryResult:
    """What one query found: the query (tokens, position labels, the compared position), the
    site, and `samples`, the distinct sampled inputs ranked by distance (ascending, in the
    metric's units); `seconds` the wall time of the whole query, `first_chunk_seconds` until the
    first rows; `candidates` asked for, `candidates_done` drawn (fewer when cancelled:
    `complete` False); seed, schedule, precision and sampler say how to draw them again."""

    model: str
    task: str
    query: str  # BOS..EOS
    query_tokens: list[int]
    query_labels: list[str]
    query_position: int
    site_short: str
    site_id: str  # hook name (with [head] for heads)
    metric: str
    epsilon: float
    candidates: int
    samples: list[SampleResult]  # ranked ascending by distance
    seconds: float = 0.0
    first_chunk_seconds: float = 0.0
    complete: bool = True  # False when cancelled part way
    # how the samples were drawn, so an export can be reproduced
    seed: int = 0
    schedule: str = ""  # format_schedule's "temperature:noise, ..." form
    precision: str = ""  # the sampling decoder's: "fp32" or "bf16"
    # the query's candidate features (name, value), in the order of the samples' `agrees` bits:
    # what the preimage summary (engine/explain/summary.py) compares, at any epsilon
    features: list[tuple[str, str]] = field(default_factory=list)
    same_label: bool = False  # samples compared only at the query position's label (QueryOptions.same_label)
    sampler: str = "decoder"  # which source drew the samples: "decoder" or "search"
    sampler_settings: str = ""  # the source's settings in words, e.g. "64 chains, temperature 0.25 x epsilon, ..."

    @property
    def in_epsilon_count(self) -> int:
        """Candidates (with multiplicity) within epsilon."""
        return sum(s.multiplicity for s in self.samples if s.in_epsilon)

    @property
    def candidates_done(self) -> int:
        return sum(s.multiplicity for s in self.samples)

    def summary(self) -> str:
        n = self.candidates_done
        k = self.in_epsilon_count
        share = k / n if n else 0.0
        return (f"{k:,} of {n:,} candidates within epsilon {self.epsilon:g} ({share:.0%}); "
                f"{len(self.samples):,} distinct samples")

    def with_epsilon(self, epsilon: float) -> QueryResult:
        """The same samples re-flagged for another epsilon (no re-sampling)."""
        samples = [replace(s, in_epsilon=s.distance <= epsilon) for s in self.samples]
        return replace(self, epsilon=epsilon, samples=samples)


class QueryAccumulator:
    """Merges streamed chunks into a ranked result; the same code path run_query uses."""

    def __init__(self, header: QueryResult):
        self.header = header
        self._by_tokens: dict[tuple[int, ...], SampleResult] = {}  # distinct by ids, not by text
        self.done = 0

    def add(self, chunk: QueryChunk) -> None:
        for s in chunk.samples:
            key = tuple(s.tokens)
            seen = self._by_tokens.get(key)
            if seen is None:
                self._by_tokens[key] = replace(s)
            else:
                seen.multiplicity += s.multiplicity
        self.done = chunk.done

    def result(self, complete: bool = True) -> QueryResult:
        ranked = sorted(self._by_tokens.values(), key=lambda s: (s.distance, s.text, s.tokens))
        eps = self.header.epsilon
        samples = [replace(s, rank=i + 1, in_epsilon=s.distance <= eps) for i, s in enumerate(ranked)]
        return replace(self.header, samples=samples, complete=complete)


def format_schedule(schedule) -> str:
    """((0.5, 0), (1, 0.1)) -> '0.5:0, 1:0.1', the form parse_schedule reads."""
    return ", ".join(f"{t:g}:{eta:g}" for t, eta in schedule)


def parse_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """'0.5:0, 1:0, 2:0.1' -> ((0.5, 0), (1, 0), (2, 0.1)); 'auto' and 'text' are the paper's
    schedules (SCHEDULES). TaskInputError (a ValueError) names the entry that is wrong."""
    if text.strip().lower() in SCHEDULES:
        return SCHEDULES[text.strip().lower()]
    entries = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        t, _, eta = part.partition(":")
        try:
            entry = (float(t), float(eta or 0))
        except ValueError:
            raise TaskInputError(f"bad schedule {text!r}: {part!r} is not temperature:noise, "
                                 "e.g. 1:0 or 2:0.1") from None
        if not (math.isfinite(entry[0]) and math.isfinite(entry[1]) and entry[0] > 0 and entry[1] >= 0):
            raise TaskInputError(f"bad schedule {text!r}: in {part!r} temperature must be > 0 and noise >= 0")
        entries.append(entry)
    if not entries:
        raise TaskInputError(f"bad schedule {text!r}: give at least one temperature:noise pair, e.g. 1:0, "
                             "or 'auto' or 'text'")
    return tuple(entries)


def default_options(task, **changes) -> QueryOptions:
    """The query options a task starts with: the paper's schedule, metric and candidates for it
    (text models: 'text', 1 - cosine, 768), with `changes` applied."""
    base = QueryOptions(candidates=task.query_candidates, schedule=SCHEDULES[task.query_schedule],
                        metric=task.query_metric)
    return replace(base, **changes)


def result_header(model: str, task, ids: list[int], position: int, site, options: QueryOptions,
                  precision: str = "") -> QueryResult:
    """An empty QueryResult describing a query; the accumulator fills in the samples."""
    return QueryResult(model=model, task=task.name, query=task.detokenize(ids), query_tokens=list(ids),
                       query_labels=task.position_labels(ids), query_position=position, site_short=site.short,
                       site_id=site.id, metric=options.metric, epsilon=options.epsilon,
                       candidates=options.candidates, samples=[], seed=options.seed,
                       schedule=format_schedule(options.schedule), precision=precision,
                       features=query_features(task, ids, position), same_label=options.same_label)


def query_features(task, ids: list[int], position: int) -> list[tuple[str, str]]:
    """The query's candidate features that have a value (Task.features), in a fixed order."""
    return [(name, value) for name, value in task.features(ids, position, ids).items() if value is not None]


def agreement(task, features: list[tuple[str, str]], ids, position: int, query_ids) -> int:
    """Bit i set where the input's value of features[i] (read at `position`) equals the query's."""
    values = task.features(ids, position, query_ids)
    return sum(1 << i for i, (name, want) in enumerate(features) if values.get(name) == want)
