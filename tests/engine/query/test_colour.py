"""The prob-diff colouring on demand (engine/query/colour.py): a query run with colour=False and
coloured afterwards, in any order and in parts, gives the values run_query(colour=True) gives."""
import threading
from dataclasses import replace
from functools import partial

import pytest

from engine.errors import Cancelled
from engine.query import run as query_run
from engine.query.colour import colour_in_parts, colour_samples
from engine.query.run import load_inverter, run_query
from engine.query.types import QueryOptions, default_options
from tests.engine.helpers import make_model_folder

# these tests are about the decoder's samples: under auto a weak decoder is extended by the search
Opts = partial(QueryOptions, sampler="decoder")

QUERY = "Baiaigiaaggi|g:3"


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    folder = make_model_folder(tmp_path_factory.mktemp("c") / "tiny-count", "counting", decoder_steps=40)
    return load_inverter(str(folder), precision="fp32")


def same_colours(coloured, plain, values: dict[int, list[float]]) -> None:
    """Each plain sample's computed colours equal the coloured query's for the same tokens."""
    want = {tuple(s.tokens): s.prob_diff for s in coloured.samples}
    assert [s.text for s in plain.samples] == [s.text for s in coloured.samples]  # the same seed, the same draws
    assert sorted(values) == list(range(len(plain.samples)))
    for i, s in enumerate(plain.samples):
        got, expected = values[i], want[tuple(s.tokens)]
        assert len(got) == len(expected) == len(s.tokens)
        assert got == pytest.approx(expected, abs=1e-5)
        assert got[0] == 0.0  # BOS


def test_colouring_afterwards_equals_colouring_in_the_query(inv):
    opts = Opts(candidates=192, chunk_size=64, seed=3, epsilon=0.3)
    coloured = run_query(inv, QUERY, "x0.mid", ":", opts)
    plain = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=192, chunk_size=64, seed=3, epsilon=0.3,
                                                              colour=False))
    assert all(s.prob_diff == [] for s in plain.samples)
    assert len({len(s.tokens) for s in plain.samples}) >= 5  # many lengths: the groups are cut to each
    backwards = list(range(len(plain.samples)))[::-1]  # any order, any subset: the values do not depend on it
    values = colour_samples(inv, plain, backwards)
    same_colours(coloured, plain, values)
    assert any(abs(v) > 1e-3 for d in values.values() for v in d)  # not all zero
    # a few at a time, as the app asks for the rows on screen
    few = colour_samples(inv, plain, [2, 0])
    assert sorted(few) == [0, 2] and all(few[i] == pytest.approx(values[i], abs=1e-6) for i in few)


def test_colouring_in_parts_streams_every_sample_once(inv):
    plain = run_query(inv, QUERY, "x1.post", ":", Opts(candidates=128, seed=1, colour=False))
    coloured = run_query(inv, QUERY, "x1.post", ":", Opts(candidates=128, seed=1))
    parts, merged = [], {}

    def on_part(values, done, total):
        parts.append((sorted(values), done, total))
        merged.update(values)

    n = len(plain.samples)
    order = [5, 1, 3] + list(range(n))  # visible rows first, then the rest (the repeats are skipped)
    assert colour_in_parts(inv, plain, order, on_part, part=4) == n
    assert parts[0] == ([0, 1, 3, 5], 4, n)
    assert parts[-1][1] == n and sum(len(p[0]) for p in parts) == n
    same_colours(coloured, plain, merged)


def test_a_cancel_stops_the_colouring_between_groups(inv, monkeypatch):
    plain = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=128, seed=2, colour=False))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        colour_samples(inv, plain, range(len(plain.samples)), cancel)
    monkeypatch.setattr(query_run, "COLOUR_ROWS", 2)
    parts = []

    def on_part(values, done, total):
        parts.append(done)
        cancel.set()  # after the first part: the next one must not run

    cancel.clear()
    done = colour_in_parts(inv, plain, range(len(plain.samples)), on_part, cancel, part=4)
    assert done == 4 and parts == [4]


def test_at_a_text_vocabulary_far_samples_stay_plain_as_in_the_query(inv, monkeypatch):
    """run_query's rule (COLOUR_NEAR_ONLY_VOCAB): only samples within epsilon are coloured; the
    parts say so with [] for the others, and colour_samples still colours whatever it is asked."""
    monkeypatch.setattr(query_run, "COLOUR_NEAR_ONLY_VOCAB", 1)  # this decoder's 40 tokens count as a text vocabulary
    plain = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=128, seed=4, colour=False))
    eps = plain.samples[len(plain.samples) // 2].distance  # half the samples within epsilon
    plain = plain.with_epsilon(eps)
    coloured = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=128, seed=4, epsilon=eps))
    merged = {}
    colour_in_parts(inv, plain, range(len(plain.samples)), lambda v, d, t: merged.update(v))
    near = [s.distance <= eps for s in plain.samples]
    assert any(near) and not all(near)
    want = {tuple(s.tokens): s.prob_diff for s in coloured.samples}
    for i, s in enumerate(plain.samples):
        assert (merged[i] != []) == near[i]
        assert merged[i] == pytest.approx(want[tuple(s.tokens)], abs=1e-5)
    far = near.index(False)
    assert len(colour_samples(inv, plain, [far])[far]) == len(plain.samples[far].tokens)


def test_a_text_model_gets_its_decoder_rows_back(tmp_path):
    """A text sample stops before the decoder's own EOS: the rows are rebuilt with it, and the
    colours equal the query's (an untrained decoder: samples of every length, some cut at n_ctx)."""
    from engine.decoder.config import DecoderTrainConfig
    from engine.decoder.files import save_decoder
    from engine.decoder.train import new_decoder
    from engine.probed.sites import chosen_sites
    from engine.store.folders import load_probed, open_folder
    from tests.engine.helpers import make_text_folder

    folder = make_text_folder(tmp_path / "tiny-gpt2", n_layers=1, n_heads=2, d_model=32, n_ctx=24)
    probed = load_probed(open_folder(folder))
    sites = chosen_sites(probed.config, None)
    decoder = new_decoder(probed, DecoderTrainConfig(minutes=0, d_model=32, n_layers=1, n_heads=2, length=12),
                          sites)
    save_decoder(folder, decoder.eval(), [s.id for s in sites], {"command": "tests"})
    inv = load_inverter(open_folder(folder), precision="fp32")
    task = inv.probed.task
    assert task.decoder_eos_id != task.eos_id
    query = "The quick brown fox jumps"
    position = len(task.parse_query(query)) - 1
    # every sample within epsilon: all coloured
    opts = default_options(task, sampler="decoder", candidates=48, seed=1, epsilon=10.0)
    coloured = run_query(inv, query, "x0.pre", position, opts)
    plain = run_query(inv, query, "x0.pre", position, replace(opts, colour=False))
    assert len({len(s.tokens) for s in plain.samples}) >= 3
    same_colours(coloured, plain, colour_samples(inv, plain, range(len(plain.samples))))
