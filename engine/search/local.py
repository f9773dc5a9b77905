"""The local search's loop: chains of token edits that stay within epsilon of the query.

Each step every chain proposes one edit (moves.py) with a token from its proposer
(proposals.py); proposals the task's grammar rejects, or that were re-run before, are redrawn
without spending a row. The new inputs are re-run together (engine/query/score.py) and stream out
as a chunk. A chain moves to its proposal only inside the epsilon wall (D' <= epsilon), and there
by Metropolis at a small temperature: downhill always, uphill with probability
exp(-(D' - D) / (T * epsilon)), which keeps chains off the wall where most proposals would fall
outside it. A chain that has not moved for RESTART_AFTER steps restarts from a random input found
within epsilon, so the chains spread over what was found. Deterministic under the seed.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from engine.explain.flips import edit_count
from engine.probed.reader import SiteReader, fused_fits
from engine.query.score import check_cancel, distances, sample_results, scored_from
from engine.query.types import QueryAccumulator, QueryChunk, QueryOptions
from engine.search.moves import NEEDS_TOKEN, Chain, Edit, Rules, apply, plan
from engine.search.prefix import MAX_TOKENS, PrefixRunner
from engine.search.proposals import AlphabetProposer, LanguageModelProposer
from engine.search.ragged import SharedReader
from engine.tasks.base import TaskInputError

ROUNDS = 4  # tries per chain and step to find a new proposal the grammar accepts
RESTART_AFTER = 8  # steps without a move before a chain restarts from a found input
STALL_STEPS = 5  # steps in a row without a single new proposal: the neighbourhood is exhausted


def settings_text(options: QueryOptions, grammar: bool, proposer: str) -> str:
    """The search's settings in words, as results record them."""
    kept = f", kept positions {' '.join(map(str, options.keep))}" if options.keep else ""
    return (f"local search: {options.chains} chains, moves replace/insert/delete/swap/rename up to the "
            f"compared position, proposals from {proposer}, temperature {options.search_temperature:g} x epsilon, "
            f"grammar filter {'on' if grammar else 'off'}, {options.candidates} rows, seed {options.seed}{kept}")


def prefix_runner(inv, site, z_q, metric: str, length: int) -> PrefixRunner | None:
    """The cached-prefix re-run where the fused GPT-2 path computes the model and the input is
    short enough to cache (else None: every proposal re-runs whole). The synthetic tasks' reader
    is fused already; a text model's is made once and kept on the inverter, its weights views of
    the bridge's but for the fused W_QKV (GPT-2 small: 85 MB, not a 0.5 GB copy)."""
    probed = inv.probed
    if length > MAX_TOKENS or not fused_fits(probed):
        return None
    reader = inv.reader if isinstance(inv.reader, SiteReader) else getattr(inv, "search_reader", None)
    if reader is None:
        reader = inv.search_reader = SharedReader(probed)
    return PrefixRunner(reader, site, z_q, metric, to_top=probed.task.is_text)


class LocalSearch:
    """One search around one query; `run` streams chunks into the accumulator."""

    def __init__(self, inv, ids: list[int], position: int, site, z_q: torch.Tensor, options: QueryOptions,
                 seeds: list[tuple[list[int], int]] = ()):
        """seeds: (input, its compared position) where chains start besides the query, e.g. the
        decoder's samples within epsilon (far members and their neighbourhoods); the chains take
        the query and the seeds in turn. A seed keeps none of the query's places ("keep")."""
        self.inv, self.task, self.site, self.z_q = inv, inv.probed.task, site, z_q
        self.options, self.query = options, list(ids)
        self.acc: QueryAccumulator | None = None  # where `run` merges the samples
        task = self.task
        outside = [k for k in options.keep if not 0 <= k < len(ids)]
        if outside:
            raise TaskInputError(f"cannot keep position {outside[0]}: this input has positions 0-{len(ids) - 1}")
        special = {task.bos_id, task.eos_id, task.pad_id} - {-1}
        self.rng = np.random.default_rng(options.seed)
        if task.is_text:
            # every row's pieces, labels and features are token display strings: with the table
            # built (once per tokenizer, 0.1 s at 50k ids) they are lookups, not 4 x 768 x 22
            # one-token decodes (2.5 s of a 768-row search at GPT-2 small, one thread)
            getattr(task.vocab, "strings", lambda: None)()
            self.proposer = LanguageModelProposer(inv.probed, special, self.rng)
            self.proposer_name = "the model's next-token distribution"
        else:
            alphabet = [i for i in range(task.vocab.vocab_size) if i not in special]
            self.proposer = AlphabetProposer(alphabet, self.rng)
            self.proposer_name = "the task's alphabet"
        self.rules = Rules(frozenset(special), frozenset(options.keep), task.n_ctx)
        self.runner = prefix_runner(inv, site, z_q, options.metric, len(ids))
        # only a task with a grammar of its own filters (a free-text model accepts any text)
        self.grammar = options.grammar and task.has_generator
        self.seen: set[tuple[int, ...]] = {tuple(ids)}
        self.found: list[Chain] = []  # inputs within epsilon: where idle chains restart
        starts = [Chain(list(ids), position, list(range(len(ids))))]
        starts += [Chain(list(t), at, [-1] * len(t)) for t, at in seeds if at < len(t) and len(t) <= task.n_ctx]
        if self.runner:
            for chain, state in zip(starts, self.runner.run([None] * len(starts), [c.tokens for c in starts],
                                                            [0] * len(starts))):
                chain.state = state
        self.seen.update(tuple(c.tokens) for c in starts)
        self.chains = [replace(starts[i % len(starts)]) for i in range(options.chains)]
        self.rows = 0

    @property
    def settings(self) -> str:
        return settings_text(self.options, self.grammar, self.proposer_name)

    def run(self, acc: QueryAccumulator, on_chunk: Callable[[QueryChunk], None] | None,
            cancel: threading.Event | None, t0: float) -> None:
        """Steps until the row budget is spent, the neighbourhood is exhausted, or `cancel` is set
        (Cancelled is raised between steps and inside a step's re-run); each step's chunk is
        merged into `acc` and goes to `on_chunk`."""
        self.acc, stalled = acc, 0
        while self.rows < self.options.candidates and stalled < STALL_STEPS:
            check_cancel(cancel)
            proposals = self._propose(self.options.candidates - self.rows)
            if not proposals:
                stalled += 1
                for c, chain in enumerate(self.chains):
                    self._idle(chain, c)
                continue
            stalled = 0
            chunk = self._score(proposals, cancel, t0)
            if on_chunk:
                on_chunk(chunk)

    # ---- one step -------------------------------------------------------------------
    def _propose(self, budget: int) -> dict[int, Chain]:
        """chain index -> its proposed next state: new inputs only, at most `budget` of them."""
        out: dict[int, Chain] = {}
        taken: set[tuple[int, ...]] = set()
        for _ in range(ROUNDS):
            waiting = [c for c in range(len(self.chains)) if c not in out][:max(0, budget - len(out))]
            if not waiting:
                break
            edits = {c: plan(self.chains[c], self.rules, self.rng) for c in waiting}
            edits = {c: e for c, e in edits.items() if e is not None}
            needing = [c for c, e in edits.items() if e.move in NEEDS_TOKEN]
            prefixes = [self.chains[c].tokens[:edits[c].at] for c in needing]
            drawn = dict(zip(needing, self.proposer.tokens(
                prefixes, [None if edits[c].move == "insert" else self.chains[c].tokens[edits[c].at] for c in needing],
                hidden=self._hidden([self.chains[c] for c in needing], prefixes))))
            for c, edit in edits.items():
                state = self._first_new(self.chains[c], edit, drawn.get(c, [None]), taken)
                if state is not None:
                    out[c] = state
                    taken.add(tuple(state.tokens))
        return out

    def _first_new(self, chain: Chain, edit: Edit, tokens: list, taken: set) -> Chain | None:
        for token in tokens:
            state = apply(chain, edit, token)
            key = tuple(state.tokens)
            if key in self.seen or key in taken or len(key) > self.task.n_ctx:
                continue
            if self.grammar and not self.task.check(self.task.detokenize(state.tokens)).well_formed:
                continue
            return state
        return None

    def _hidden(self, chains: list[Chain], prefixes: list[list[int]]) -> list[torch.Tensor | None] | None:
        """Per edit, the chain's last residual stream (d,) at the place before it, from its cached
        state (engine/search/prefix.py), for prefixes whose next-token distribution the proposer
        has not met (one per distinct prefix); None where it has, or where there is no state (the
        proposer then runs the prefix through the model itself)."""
        if self.runner is None or not isinstance(self.proposer, LanguageModelProposer):
            return None
        first: dict[tuple[int, ...], int] = {}
        for i, (chain, prefix) in enumerate(zip(chains, prefixes)):
            if chain.state is not None and not self.proposer.known(prefix):
                first.setdefault(tuple(prefix), i)
        out: list[torch.Tensor | None] = [None] * len(chains)
        picked = list(first.values())
        for i, h in zip(picked, self.runner.tops([chains[i].state for i in picked], [len(prefixes[i]) - 1
                                                                                     for i in picked])):
            out[i] = h
        return out

    def _score(self, proposals: dict[int, Chain], cancel, t0: float) -> QueryChunk:
        order = list(proposals)
        keys = [tuple(proposals[c].tokens) for c in order]
        if self.runner is not None:  # only the positions from each edit on are computed
            check_cancel(cancel)
            states = self.runner.run([proposals[c].parent for c in order], [proposals[c].tokens for c in order],
                                     [proposals[c].start for c in order])
            for c, state in zip(order, states):
                proposals[c].state, proposals[c].parent = state, None  # no chain of ancestors kept alive
            scored = scored_from(self.task, keys, [s.distance for s in states], self.options, self.acc.header)
        else:
            scored = distances(self.inv, self.site, keys, self.z_q, self.options, self.acc.header, cancel, exact=True)
        n = len(keys)
        nan = [math.nan] * n
        samples = sample_results(self.task, scored, self.acc.header, [1] * n, nan, nan, [[] for _ in keys],
                                 edits=[edit_count(self.query, list(k)) for k in keys], cancel=cancel)
        self.seen.update(keys)
        self.rows += n
        chunk = QueryChunk(samples, self.rows, self.options.candidates, time.time() - t0)
        self.acc.add(chunk)
        eps, temp = self.options.epsilon, self.options.search_temperature * self.options.epsilon
        moved = set()
        for c, d in zip(order, scored.distance.cpu().tolist()):
            state, chain = proposals[c], self.chains[c]
            state.distance = d
            if d <= eps:  # kept for restarts without its cache (a restarted chain re-runs whole once)
                self.found.append(Chain(state.tokens, state.anchor, state.origin, d))
                # temperature 0: the plain wall, any input within epsilon is taken
                if temp == 0 or d <= chain.distance or self.rng.random() < math.exp(-(d - chain.distance) / temp):
                    self.chains[c] = state
                    moved.add(c)
        for c, chain in enumerate(self.chains):
            if c not in moved:
                self._idle(chain, c)
        return chunk

    def _idle(self, chain: Chain, index: int) -> None:
        chain.idle += 1
        if chain.idle >= RESTART_AFTER and self.found:
            pick = self.found[int(self.rng.integers(len(self.found)))]
            self.chains[index] = Chain(list(pick.tokens), pick.anchor, list(pick.origin), pick.distance)
