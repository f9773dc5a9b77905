"""The bundled ioi model's decoder: a query at the final residual stream at END returns samples
within epsilon, their IO and S facts are read from their own tokens, and the summary says the
IO name is shared there (the case study's headline reading)."""
from __future__ import annotations

import pytest

from engine.explain.summary import summarize
from engine.query.run import load_inverter, run_query
from engine.query.types import default_options

QUERY = "After Erin and Justin went to the house, Erin gave a ring to Justin"


@pytest.fixture(scope="module")
def inv():
    return load_inverter("ioi")


def test_the_final_residual_stream_at_end_holds_the_io_name(inv):
    task = inv.probed.task
    last = inv.probed.config.n_layers - 1
    r = run_query(inv, QUERY, f"x{last}.post", "END", default_options(task, candidates=128, seed=1, colour=False))
    assert r.metric == "cosine" and r.query_labels[r.query_position] == "END"
    close = [s for s in r.samples if s.in_epsilon]
    assert close, r.summary()
    for s in close:  # each fact is the sample's own: parsed from its tokens
        parsed = task.parsed(s.tokens)
        assert s.fact == (f"IO {parsed.io}, S {parsed.s}" if parsed else "")
    io = next(f for f in summarize(r).features if f.name == "IO")
    agree = sum(s.multiplicity for s in close if (p := task.parsed(s.tokens)) and p.io == "Justin")
    assert io.query_value == "Justin" and io.share == pytest.approx(agree / r.in_epsilon_count)
    at_end = [s for s in close if s.labels[s.compared_position] == "END"]
    assert at_end and all(task.parsed(s.tokens).io == "Justin" for s in at_end)  # the rest matched another ' to'


def test_compared_at_end_only_every_close_sample_names_the_query_io(inv):
    task = inv.probed.task
    last = inv.probed.config.n_layers - 1
    options = default_options(task, candidates=128, seed=1, colour=False, same_label=True)
    r = run_query(inv, QUERY, f"x{last}.post", "END", options)
    close = [s for s in r.samples if s.in_epsilon]
    assert close and r.same_label
    assert all(s.labels[s.compared_position] == "END" for s in close)
    io = next(f for f in summarize(r).features if f.name == "IO")
    assert io.share >= 0.9 and io.verdict == "shared", summarize(r).line()


def test_a_name_mover_at_end_holds_the_subject(inv):
    """The layer-3 heads attend to S2 and write against S: their output at END says who S is."""
    task = inv.probed.task
    options = default_options(task, candidates=256, seed=2, colour=False, same_label=True)
    r = run_query(inv, QUERY, "a3.3", "END", options)
    s_name = next(f for f in summarize(r).features if f.name == "S")
    assert s_name.query_value == "Erin" and s_name.verdict == "shared", summarize(r).line()


def test_every_sample_is_checked_as_the_prompt_it_is(inv):
    """A sample's well_formed is the grammar's verdict on its own prompt (without the model's BOS
    token in front): it agrees with parsing the sample's tokens, and a valid prompt counts as one."""
    task = inv.probed.task
    last = inv.probed.config.n_layers - 1
    r = run_query(inv, QUERY, f"x{last}.post", "END", default_options(task, candidates=64, seed=3, colour=False))
    assert r.samples
    for s in r.samples:
        assert s.well_formed == (task.parsed(s.tokens) is not None), s.text
    assert any(s.well_formed for s in r.samples)  # the card's decoder writes IOI prompts nearly always
