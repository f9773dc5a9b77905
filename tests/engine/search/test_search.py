"""The local preimage search on the bundled models, with their decoders set aside (sampler
'search'): the flip test names what the paper reads, its counts agree with the samples' own
parsed facts, every distance re-computes independently, and the search is deterministic,
cancellable and keeps what it is told to keep."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine.explain.flips import MIN_CHANGES, flip_test
from engine.probed.sites import get_site, read_site
from engine.query.run import load_inverter, run_query
from engine.query.types import default_options
from engine.tasks import TaskInputError


@pytest.fixture(scope="module")
def counting():
    return load_inverter("counting")


@pytest.fixture(scope="module")
def ioi():
    return load_inverter("ioi")


def generated_queries(task, n: int, seed: int) -> list[str]:
    """Queries drawn by the task's own generator (not hand-picked), as a user would type them."""
    grid = task.random_inputs(n, np.random.default_rng(seed))
    return [task.query_text(row) for row in grid]


def feature(test, name):
    return next(f for f in test.features if f.name == name)


def independent_distance(inv, result, sample) -> float:
    """The sample's distance from scratch: the reference hooked read of the site (not the
    fused reader the query uses), the metric written out, min over the compared positions."""
    site = get_site(inv.probed.config, result.site_short)
    bridge = inv.probed.bridge
    z_q = read_site(bridge, torch.tensor([result.query_tokens]), site)[0, result.query_position].double()
    acts = read_site(bridge, torch.tensor([sample.tokens]), site)[0].double()  # (T, d)
    special = inv.probed.task.special_mask(np.array([sample.tokens]))[0]
    best = float("inf")
    for i, a in enumerate(acts):
        if special[i]:
            continue
        if result.metric == "euclidean":
            d = float((a - z_q).norm() / z_q.norm())
        else:
            d = float(1 - (a @ z_q) / (a.norm() * z_q.norm()))
        best = min(best, d)
    return best


@pytest.mark.parametrize("site", ["x1.post", "m1"])
def test_counting_search_names_the_count_required(counting, site):
    task = counting.probed.task
    for text in generated_queries(task, 2, seed=11):
        r = run_query(counting, text, site, ":", default_options(task, candidates=384, sampler="search", seed=1))
        assert r.sampler == "search" and "64 chains" in r.sampler_settings
        test = flip_test(r)
        count = feature(test, "count")
        assert count.verdict == "required", test.line()
        # the counts, from the samples' own text: the query letter's count before '|'
        query_count = count.query_value
        changed = [s for s in r.samples if s.well_formed and s.fact != query_count]
        assert count.changed == len(changed) >= MIN_CHANGES
        assert count.within == sum(s.in_epsilon for s in changed)


def test_every_search_sample_distance_recomputes(counting):
    task = counting.probed.task
    text = generated_queries(task, 1, seed=5)[0]
    r = run_query(counting, text, "x1.post", ":", default_options(task, candidates=96, sampler="search", seed=2))
    assert len(r.samples) == 96
    for s in r.samples:
        assert s.distance == pytest.approx(independent_distance(counting, r, s), abs=1e-4)
        assert s.in_epsilon == (s.distance <= r.epsilon)
        assert 1 <= s.edits <= len(r.query_tokens) + 8


def test_the_search_is_deterministic_and_streams(counting):
    task = counting.probed.task
    opts = default_options(task, candidates=200, sampler="search", seed=7)
    chunks = []
    a = run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":", opts, on_chunk=chunks.append)
    b = run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":", opts)
    assert [(s.tokens, s.distance) for s in a.samples] == [(s.tokens, s.distance) for s in b.samples]
    assert len(chunks) > 1 and chunks[0].done <= opts.chains  # the first rows come after the first step
    assert chunks[-1].done == a.candidates_done == 200


def test_a_cancel_stops_between_steps(counting):
    task = counting.probed.task
    cancel = threading.Event()
    chunks = []

    def on_chunk(chunk):
        chunks.append(chunk)
        cancel.set()

    r = run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":",
                  default_options(task, candidates=1024, sampler="search"), on_chunk=on_chunk, cancel=cancel)
    assert not r.complete and len(chunks) == 1
    assert r.candidates_done == chunks[0].done < 1024


def test_kept_positions_are_never_changed(counting):
    task = counting.probed.task
    ids = task.parse_query("Baiaigiaaggi|g:3")
    free = 3
    keep = tuple(i for i in range(len(ids)) if i != free)
    r = run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":",
                  default_options(task, candidates=64, sampler="search", keep=keep))
    assert r.samples
    for s in r.samples:  # only place 3 changed (replaced, deleted or with tokens inserted before it)
        assert s.tokens[:free] == ids[:free] and s.tokens[len(s.tokens) - (len(ids) - free - 1):] == ids[free + 1:]
    with pytest.raises(TaskInputError, match="cannot keep position 99"):
        run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":", default_options(task, sampler="search", keep=(99,)))


def test_ioi_search_names_io_at_the_last_residual_and_s_at_the_name_mover(ioi):
    task = ioi.probed.task
    text = generated_queries(task, 1, seed=3)[0]
    parsed = task.parsed(task.tokenize(text))
    opts = default_options(task, candidates=320, sampler="search", seed=0)
    for site, name, value in (("x3.post", "IO", parsed.io.strip()), ("a3.3", "S", parsed.s.strip())):
        r = run_query(ioi, text, site, "END", opts)
        test = flip_test(r)
        f = feature(test, name)
        assert f.query_value == value and f.verdict == "required", test.line()
        assert not test.warning  # the grammar filter keeps every sample an IOI prompt
        assert all(s.well_formed for s in r.samples)
        # the counts, from the samples' own parsed prompts
        changed = [s for s in r.samples if getattr(task.parsed(s.tokens), name.lower()).strip() != value]
        assert f.changed == len(changed) and f.within == sum(s.in_epsilon for s in changed)


def test_auto_goes_on_with_the_search_where_the_decoder_barely_reaches(counting, monkeypatch):
    """Under auto, a decoder result with under SEARCH_BELOW of its candidates within epsilon is
    extended by the search, seeded from those samples; both kinds stay in the one result."""
    import engine.query.run as run

    task = counting.probed.task
    opts = default_options(task, candidates=128, colour=False, seed=4)
    plain = run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":", opts)
    assert plain.sampler == "decoder" and all(s.edits == -1 for s in plain.samples)
    monkeypatch.setattr(run, "SEARCH_BELOW", 1.01)  # as if the decoder's share were under the bar
    r = run_query(counting, "Baiaigiaaggi|g:3", "x1.post", ":", opts)
    assert r.sampler == "search" and r.sampler_settings.startswith("after the decoder")
    drawn = [s for s in r.samples if s.edits == -1]
    searched = [s for s in r.samples if s.edits >= 0]
    assert {tuple(s.tokens) for s in drawn} == {tuple(s.tokens) for s in plain.samples}
    assert len(searched) >= 100 and r.candidates_done == plain.candidates_done + len(searched)
