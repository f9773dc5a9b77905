"""The search's cached-prefix re-run on a small GPT-2-style text model (random weights): proposals
run only up to the site, the layers above run lazily for the language-model proposals, and the
fused weights are views of the bridge's. Every distance and last residual stream is checked
against the bridge's own hooked forward pass of the whole input (not the fused path)."""
from __future__ import annotations

import pytest
import torch

from engine.probed.reader import SiteReader
from engine.probed.sites import get_site, read_site
from engine.query.run import load_inverter, run_query
from engine.query.types import default_options
from engine.search.moves import Chain, Edit, apply
from engine.search.prefix import PrefixRunner
from engine.search.ragged import SharedReader
from engine.store.folders import open_folder
from tests.engine.helpers import make_text_folder

PROMPT = "the search edits the prompt one token at a time"
# a head at a middle and at the last layer, and every other kind of site
SITES = ["a1.2", "a2.0", "x1.pre", "attn1", "x1.mid", "m1", "x1.post", "x2.post"]


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    folder = make_text_folder(tmp_path_factory.mktemp("text") / "tiny-gpt2", n_layers=3, n_heads=4, d_model=64)
    return load_inverter(open_folder(folder), decoder_optional=True)


def reference(inv, tokens: list[int], short: str) -> torch.Tensor:
    """(T, d) the site's activations from the bridge's hooked pass over the whole input, in double."""
    site = get_site(inv.probed.config, short)
    return read_site(inv.probed.bridge, torch.tensor([tokens]), site)[0].double()


def cosine_distances(acts: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    return 1 - (acts @ z_q) / (acts.norm(dim=1) * z_q.norm())  # (T,)


def lineage() -> list[tuple[int, Edit, int | None]]:
    """(parent's index, edit, new token): a tree of inputs from the query (index 0), edits late
    and early, inserts and deletes, children of children."""
    return [(0, Edit("replace", 9), 40), (0, Edit("insert", 3), 41), (1, Edit("delete", 2), None),
            (1, Edit("replace", 12), 42), (3, Edit("swap", 4, 11), None), (2, Edit("rename", 5), 43),
            (4, Edit("replace", 1), 44), (6, Edit("insert", 13), 45)]


def test_shared_weights_read_like_the_copy(inv):
    """The search's fp32 reader copies no weight but the fused W_QKV, and reads as SiteReader does."""
    probed = inv.probed
    shared, copy = SharedReader(probed), SiteReader(probed)
    assert shared.w_e.data_ptr() == probed.bridge.W_E.data_ptr()
    assert shared.layers[0].w_in.data_ptr() == probed.bridge.blocks[0].mlp.W_in.data_ptr()
    tokens = torch.tensor([probed.task.parse_query(PROMPT)])
    for short in ("a1.2", "x2.post"):
        site = get_site(probed.config, short)
        assert torch.allclose(shared.read(tokens, site), copy.read(tokens, site), atol=1e-6)


@pytest.mark.parametrize("short", SITES)
def test_prefix_distances_and_tops_match_whole_reruns(inv, short):
    """Each state's per-position distances, and its last residual stream at every place asked
    (asked in an order that makes states extend after, and before, their children inherit),
    equal a whole re-run of its input through the bridge."""
    probed = inv.probed
    ids = probed.task.parse_query(PROMPT)
    site = get_site(probed.config, short)
    z_q = reference(inv, ids, short)[len(ids) - 1]
    runner = PrefixRunner(SharedReader(probed), site, z_q.float(), "cosine", to_top=True)
    last = f"x{probed.config.n_layers - 1}.post"
    chains = [Chain(list(ids), len(ids) - 1, list(range(len(ids))))]
    chains[0].state = runner.run([None], [chains[0].tokens], [0])[0]
    runner.tops([chains[0].state], [7])  # the query knows its top layers up to place 7 only
    for step, (parent, edit, token) in enumerate(lineage()):
        child = apply(chains[parent], edit, token)
        child.state = runner.run([child.parent], [child.tokens], [child.start])[0]
        chains.append(child)
        if step % 2:  # some states extend before their children are made, some after
            runner.tops([chains[parent].state], [len(chains[parent].tokens) - 2])
    places = [[2, len(c.tokens) - 1, 5] for c in chains]
    got = runner.tops([c.state for c in chains for _ in range(3)], [p for ps in places for p in ps])
    for c, chain in enumerate(chains):
        want = cosine_distances(reference(inv, chain.tokens, short), z_q)
        assert torch.allclose(chain.state.distance.double(), want, atol=2e-5), (short, c)
        tops = reference(inv, chain.tokens, last)
        for k, place in enumerate(places[c]):
            assert torch.allclose(got[3 * c + k].double(), tops[place], atol=1e-4), (short, c, place)


def test_a_text_search_measures_every_sample_as_a_whole_rerun(inv):
    """End to end at a head site: the search's distances (the fast path's) equal the bridge's
    distance of each sample re-run whole, and the search is deterministic."""
    task = inv.probed.task
    ids = task.parse_query(PROMPT)
    opts = default_options(task, candidates=96, sampler="search", seed=3, metric="cosine")
    r = run_query(inv, task.query_text(ids), "a1.2", len(ids) - 1, opts)
    assert len(r.samples) == 96
    z_q = reference(inv, ids, "a1.2")[len(ids) - 1]
    for s in r.samples:
        d = cosine_distances(reference(inv, s.tokens, "a1.2"), z_q)
        special = task.special_mask(torch.tensor([s.tokens]).numpy())[0]
        want = min(float(x) for x, sp in zip(d, special) if not sp)
        assert s.distance == pytest.approx(want, abs=2e-5)
    again = run_query(inv, task.query_text(ids), "a1.2", len(ids) - 1, opts)
    assert [(s.tokens, s.distance) for s in again.samples] == [(s.tokens, s.distance) for s in r.samples]
