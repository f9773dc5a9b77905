"""The flow graph: contributions, logit lens, decomposition, route, JSON and the `flow` command.

Every check recomputes what it checks on its own (a cache of the model's hooks and plain torch),
rather than calling the code under test a second time.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.cli.main import main as cli_main
from engine.flow.build import build_flow, default_output_position, flow_for_query, top_neurons
from engine.flow.contributions import capture, head_terms, layer_flow
from engine.flow.graph import FlowGraph, flow_sites
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.probed.sites import get_site, read_sites
from engine.store.folders import BUNDLED_DIR, load_probed, save_probed
from engine.tasks.base import TaskInputError

COUNTING_TEXT = "Baiaigiaaggi|g:3"
ADDITION_TEXT = "B615+861=1476"


@pytest.fixture(autouse=True)
def no_grad():
    with torch.no_grad():  # the checks below multiply weights that require grad
        yield


@pytest.fixture(scope="module")
def counting():
    return build_probed(PAPER_CONFIGS["counting"], seed=3)


@pytest.fixture(scope="module")
def addition():
    return build_probed(PAPER_CONFIGS["addition"], seed=4)  # 4 heads: the per-head split matters


@pytest.fixture(scope="module", params=["counting", "addition"])
def case(request, counting, addition):
    model, text = (counting, COUNTING_TEXT) if request.param == "counting" else (addition, ADDITION_TEXT)
    ids = model.task.parse_query(text)
    with torch.no_grad():
        logits, cache = model.bridge.run_with_cache(torch.tensor([ids]))
    return model, text, ids, logits[0], cache, flow_for_query(model, text)


def incoming(graph):
    into: dict = {}
    for e in graph.edges:
        into.setdefault(e[1], []).append(e)
    return into


def lens_probs(bridge, x):
    """softmax(unembed(ln_final(x))) written out with torch's own layer norm."""
    ln = bridge.ln_final
    normed = F.layer_norm(x, x.shape[-1:], ln.weight, ln.bias, bridge.cfg.eps)
    return torch.softmax(normed @ bridge.W_U + bridge.b_U, -1)


# ---- contributions --------------------------------------------------------------------------
def test_contributions_into_every_residual_node_sum_to_one(case):
    model, _, ids, _, _, graph = case
    into = incoming(graph)
    for L in range(graph.n_layers):
        for i in range(len(ids)):
            for whole in (f"x{L}.mid", f"x{L}.post"):
                assert sum(e[2] for e in into[(whole, i)]) == pytest.approx(1, abs=1e-5)
            for h in range(graph.n_heads):  # a head passes on exactly what its sources gave it
                given = sum(e[2] for e in into[(f"a{L}.{h}", i)])
                out = [e[2] for e in graph.edges if e[0] == (f"a{L}.{h}", i)]
                assert out == [pytest.approx(given, abs=1e-6)]
    assert all(0 <= e[2] <= 1 for e in graph.edges)


def test_attention_contributions_match_a_plain_recomputation(case):
    model, _, ids, _, cache, graph = case
    b = model.bridge
    L, i = graph.n_layers - 1, len(ids) - 2
    x_pre, x_mid = cache[f"blocks.{L}.hook_resid_pre"][0, i], cache[f"blocks.{L}.hook_resid_mid"][0, i]
    pattern, v = cache[f"blocks.{L}.attn.hook_pattern"][0], cache[f"blocks.{L}.attn.hook_v"][0]
    w_o, b_o = b.blocks[L].attn.W_O, b.blocks[L].attn.b_O
    parts, names = [], []
    for h in range(graph.n_heads):
        for j in range(i + 1):
            parts.append(pattern[h, i, j] * (v[j, h] @ w_o[h]))
            names.append(((f"x{L - 1}.post", j), (f"a{L}.{h}", i)))
    parts.append(x_pre + b_o)  # the documented choice: b_O rides with the residual
    names.append(((f"x{L - 1}.post", i), (f"x{L}.mid", i)))
    assert torch.allclose(sum(parts), x_mid, atol=1e-4)  # the parts sum to the whole
    c = torch.stack([(x_mid.abs().sum() - (x_mid - p).abs().sum()).clamp(min=0) for p in parts])
    c = c / c.sum()
    weights = {(e[0], e[1]): e[2] for e in graph.edges}
    for (src, dst), expected in zip(names, c.tolist()):
        assert weights[(src, dst)] == pytest.approx(expected, abs=1e-5)
    # the MLP block: parts m and x_mid of the whole x_post
    m, x_post = cache[f"blocks.{L}.hook_mlp_out"][0, i], cache[f"blocks.{L}.hook_resid_post"][0, i]
    cm = [(x_post.abs().sum() - (x_post - p).abs().sum()).clamp(min=0) for p in (m, x_mid)]
    assert weights[((f"m{L}", i), (f"x{L}.post", i))] == pytest.approx(float(cm[0] / sum(cm)), abs=1e-5)
    assert weights[((f"x{L}.mid", i), (f"x{L}.post", i))] == pytest.approx(float(cm[1] / sum(cm)), abs=1e-5)


def test_head_terms_plus_bias_are_the_attention_output(case):
    model, _, ids, _, cache, graph = case
    cap = capture(model.bridge, torch.tensor([ids]))
    for L in range(graph.n_layers):
        attn, attn_out = model.bridge.blocks[L].attn, cache[f"blocks.{L}.hook_attn_out"][0]
        terms = head_terms(cache[f"blocks.{L}.attn.hook_pattern"][0], cache[f"blocks.{L}.attn.hook_v"][0], attn.W_O)
        assert torch.allclose(terms.sum((0, 2)) + attn.b_O, attn_out, atol=1e-5)
        heads = layer_flow(model.bridge, cap, L).heads  # (H, T, d): what the graph's head nodes hold
        assert torch.allclose(heads.sum(0) + attn.b_O, attn_out, atol=1e-5)


def test_head_nodes_are_the_inversionview_head_sites(case):
    model, _, ids, _, _, graph = case
    for L in range(graph.n_layers):
        for h in range(graph.n_heads):
            site = get_site(model.config, f"a{L}.{h}")
            acts = read_sites(model.bridge, torch.tensor([ids]), [site])[site.short][0]  # (T, d)
            norms = [graph.node(site.short, i).norm for i in range(len(ids))]
            assert np.allclose(norms, acts.norm(dim=-1).numpy(), atol=1e-5)


# ---- logit lens and direct logits ------------------------------------------------------------
def test_lens_of_the_final_residual_is_the_model_output(case):
    model, _, ids, logits, _, graph = case
    probs = torch.softmax(logits, -1)  # the model's own distribution, from bridge(tokens)
    last = f"x{graph.n_layers - 1}.post"
    for i in range(len(ids)):
        node = graph.node(last, i)
        top = probs[i].topk(5)
        assert [t for t, _ in node.top] == top.indices.tolist()
        assert np.allclose([p for _, p in node.top], top.values.numpy(), atol=1e-5)
        assert node.target == int(probs[i].argmax()) and node.target_rank == 1
        assert node.target_prob == pytest.approx(float(probs[i].max()), abs=1e-5)


def test_lens_of_an_inner_node_and_its_target_rank(case):
    model, _, ids, _, cache, graph = case
    probs = lens_probs(model.bridge, cache["blocks.0.hook_resid_mid"][0])  # (T, V)
    for i in range(len(ids)):
        node = graph.node("x0.mid", i)
        assert node.top[0][0] == int(probs[i].argmax())
        t = graph.targets[i]
        assert node.target_prob == pytest.approx(float(probs[i, t]), abs=1e-5)
        assert node.target_rank == int((probs[i] > probs[i, t]).sum()) + 1


def test_promoted_and_suppressed_tokens_are_direct_logits_through_the_frozen_final_norm(case):
    model, _, ids, _, cache, graph = case
    b, i = model.bridge, len(ids) - 2
    L = graph.n_layers - 1
    x_final = cache[f"blocks.{L}.hook_resid_post"][0, i]
    scale = ((x_final - x_final.mean()).pow(2).mean() + b.cfg.eps).sqrt()
    for site, vec in ((f"m{L}", cache[f"blocks.{L}.hook_mlp_out"][0, i]),
                      ("a0.0", cache["blocks.0.attn.hook_z"][0, i, 0] @ b.blocks[0].attn.W_O[0])):
        dla = ((vec - vec.mean()) * b.ln_final.weight / scale) @ b.W_U
        node = graph.node(site, i)
        assert [t for t, _ in node.promoted] == dla.topk(5).indices.tolist()
        assert np.allclose([v for _, v in node.promoted], dla.topk(5).values.numpy(), atol=1e-5)
        assert [t for t, _ in node.suppressed] == dla.topk(5, largest=False).indices.tolist()
        assert node.target_rank is None and graph.node(f"x{L}.mid", i).promoted == ()


def test_targets_one_for_all_per_position_and_bad(counting):
    ids = counting.task.parse_query(COUNTING_TEXT)
    vocab = counting.task.vocab.chars
    g = build_flow(counting.bridge, ids, vocab, target=counting.task.vocab.id_of("3"))
    assert {n.target for n in g.nodes} == {counting.task.vocab.id_of("3")}
    per = list(range(len(ids)))
    g = build_flow(counting.bridge, ids, vocab, target=per)
    assert [g.node("x1.post", i).target for i in range(len(ids))] == per
    with pytest.raises(TaskInputError, match="out of range"):
        build_flow(counting.bridge, ids, vocab, target=99)
    with pytest.raises(TaskInputError, match="3 target tokens"):
        build_flow(counting.bridge, ids, vocab, target=[1, 2, 3])
    g = flow_for_query(counting, COUNTING_TEXT, target="3")
    assert g.node("x0.pre", 0).target == counting.task.vocab.id_of("3")


def test_big_vocabulary_fast_sweep_agrees_with_float32():
    from engine.runtime import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(d_model=32, d_head=8, n_heads=4, n_layers=1, n_ctx=16, d_vocab=5000, d_mlp=64,
                                  act_fn="gelu", normalization_type="LN", seed=5)
    bridge = TransformerBridge.boot_native(cfg, device="cpu").eval()
    with torch.no_grad():
        bridge.ln_final.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
        bridge.ln_final.weight.mul_(8)  # peaked distributions, so the top tokens are well apart
        # a direction every token's unembedding shares, as trained models have: logits far from 0
        bridge.original_model.head.weight.add_(torch.randn(32, generator=torch.Generator().manual_seed(2)))
    ids = list(range(100, 1300, 100))
    vocab = [f"t{i}" for i in range(5000)]
    exact = build_flow(bridge, ids, vocab, fast=False)
    fast = build_flow(bridge, ids, vocab, fast=True)
    probs = torch.softmax(bridge(torch.tensor([ids]))[0], -1)
    for i in range(len(ids)):  # the blocked top-k is exact: compare with a full top-k
        assert [t for t, _ in exact.node("x0.post", i).top] == probs[i].topk(5).indices.tolist()
    for a, b in zip(exact.nodes, fast.nodes):
        assert [t for t, _ in a.top] == [t for t, _ in b.top]
        assert np.allclose([p for _, p in a.top], [p for _, p in b.top], rtol=1e-2)  # documented: about 1%
        assert [t for t, _ in a.promoted] == [t for t, _ in b.promoted]
        assert [t for t, _ in a.suppressed] == [t for t, _ in b.suppressed]


# ---- route ----------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [0.0, 0.04, 0.15])
def test_route_is_every_strong_edge_that_leads_to_the_output(counting, threshold):
    graph = flow_for_query(counting, COUNTING_TEXT, threshold=threshold)
    route = graph.route
    assert route and all(e[2] >= threshold for e in route)
    # every route edge leads to the output along route edges
    reach = {graph.output}
    for e in reversed(route):  # the route is in forward order
        if e[1] in reach:
            reach.add(e[0])
    assert all(e[1] in reach for e in route)
    # and nothing strong that feeds the route is missing
    on_route = {e[0] for e in route} | {graph.output}
    missing = [e for e in graph.edges if e[2] >= threshold and e[1] in on_route and e not in route]
    assert missing == []


def test_default_output_is_the_trained_prediction_position(counting, addition):
    ids = counting.task.parse_query(COUNTING_TEXT)
    assert counting.task.position_labels(ids)[default_output_position(counting.task, ids)] == ":"
    ids = addition.task.parse_query(ADDITION_TEXT)
    assert default_output_position(addition.task, ids) == len(ids) - 2  # the last answer digit, before E
    g = flow_for_query(counting, COUNTING_TEXT, position="Q")
    assert g.output == ("x1.post", 13)


# ---- JSON ----------------------------------------------------------------------------------
def test_json_round_trip_carries_every_node_and_edge(addition):
    graph = flow_for_query(addition, ADDITION_TEXT)
    back = FlowGraph.from_json(graph.to_json(threshold=0))
    assert [n.key for n in back.nodes] == [n.key for n in graph.nodes]
    assert len(back.nodes) == len(flow_sites(2, 4)) * len(graph.tokens)
    for a, b in zip(graph.nodes, back.nodes):
        assert (a.site, a.target, a.target_rank) == (b.site, b.target, b.target_rank)
        assert [t for t, _ in a.top] == [t for t, _ in b.top]
        assert [t for t, _ in a.promoted] == [t for t, _ in b.promoted]
        assert b.norm == pytest.approx(a.norm, abs=1e-5)
    assert [(e[0], e[1]) for e in back.edges] == [(e[0], e[1]) for e in graph.edges]
    assert np.allclose([e[2] for e in back.edges], [e[2] for e in graph.edges], atol=1e-6)
    assert [(e[0], e[1]) for e in back.route] == [(e[0], e[1]) for e in graph.route]
    assert np.allclose(back.attention, graph.attention, atol=1e-6)
    assert back.output == graph.output and back.targets == graph.targets
    doc = json.loads(graph.to_json())  # default: only the edges at or above the threshold
    assert len(doc["edges"]) == sum(e[2] >= graph.threshold for e in graph.edges) < len(graph.edges)
    assert doc["nodes"][0]["top"][0]["token"] == addition.task.vocab.chars[doc["nodes"][0]["top"][0]["id"]]


# ---- MLP neurons -----------------------------------------------------------------------------
def test_top_neurons_rank_by_activation_times_output_norm(counting):
    ids = counting.task.parse_query(COUNTING_TEXT)
    graph = flow_for_query(counting, COUNTING_TEXT)
    _, cache = counting.bridge.run_with_cache(torch.tensor([ids]))
    acts = cache["blocks.1.mlp.hook_post"][0, 14]  # (d_mlp,)
    w_out = counting.bridge.blocks[1].mlp.W_out  # (d_mlp, d)
    score = (acts * w_out.norm(dim=-1)).abs()
    rows = top_neurons(counting.bridge, graph, layer=1, position=14, n_neurons=6)
    assert [r.index for r in rows] == score.topk(6).indices.tolist()
    assert rows[0].activation == pytest.approx(float(acts[rows[0].index]), abs=1e-5)
    again = top_neurons(counting.bridge, FlowGraph.from_json(graph.to_json()), layer=1, position=14, n_neurons=6)
    assert [r.index for r in again] == [r.index for r in rows]  # a graph from JSON re-runs the model
    assert [t for t, _ in again[0].promoted] == [t for t, _ in rows[0].promoted]


def test_works_with_autograd_on_as_the_app_calls_it(addition):
    with torch.enable_grad():  # parameters require grad; the engine must not trip over that
        graph = flow_for_query(addition, ADDITION_TEXT)
        assert len(top_neurons(addition.bridge, graph, layer=0, position=3, n_neurons=4)) == 4


# ---- the trained bundled model ----------------------------------------------------------------
TRAINED_COUNTING = BUNDLED_DIR / "counting" / "probed.safetensors"


@pytest.mark.skipif(not TRAINED_COUNTING.is_file(), reason="no trained counting model yet")
def test_trained_counting_model_predicts_the_count_at_the_colon():
    model = load_probed("counting")
    graph = flow_for_query(model, COUNTING_TEXT)
    node = graph.node(*graph.output)
    assert graph.output == ("x1.post", 14) and model.task.vocab.chars[node.top[0][0]] == "3"
    into = incoming(graph)
    assert sum(e[2] for e in into[("x1.mid", 14)]) == pytest.approx(1, abs=1e-5)


TRAINED_ADDITION = BUNDLED_DIR / "addition" / "probed.safetensors"


@pytest.mark.skipif(not TRAINED_ADDITION.is_file(), reason="no trained addition model yet")
def test_trained_addition_model_reads_out_the_sum_at_the_answer_positions():
    model = load_probed("addition")
    graph = flow_for_query(model, ADDITION_TEXT)
    ids = graph.tokens
    for i in range(8, 12):  # '=' and the first three answer digits predict the next answer token
        node = graph.node("x1.post", i)
        assert node.top[0][0] == ids[i + 1] and node.target == ids[i + 1] and node.target_rank == 1
    assert graph.route and all(e[2] >= graph.threshold for e in graph.route)


# ---- the command line --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, counting):
    folder = tmp_path_factory.mktemp("flow") / "tiny-counting"
    save_probed(counting, folder)
    return folder


def test_flow_command_prints_the_route_and_writes_json(model_dir, tmp_path, capsys):
    out = tmp_path / "sub" / "graph.json"
    assert cli_main(["flow", "--model", str(model_dir), "--text", COUNTING_TEXT, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "route to x1.post @ 14" in printed and "x0.pre" in printed
    graph = FlowGraph.from_json(out.read_text())
    assert graph.output == ("x1.post", 14) and len(graph.nodes) == 9 * 17


def test_flow_command_prunes_by_influence_and_writes_neuronpedia_graph_json(model_dir, tmp_path, capsys):
    from engine.flow.prune import prune_by_influence

    out = tmp_path / "Counting Route.json"
    assert cli_main(["flow", "--model", str(model_dir), "--text", COUNTING_TEXT, "--node-share", "0.7",
                     "--neuronpedia", str(out)]) == 0
    printed = capsys.readouterr().out
    graph = flow_for_query(load_probed(str(model_dir)), COUNTING_TEXT)
    pruned = prune_by_influence(graph, node_share=0.7)
    assert f"pruned by influence: {len(pruned.nodes)} nodes hold 70% and {len(pruned.edges)} edges 98%" in printed
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["metadata"]["slug"] == "counting-route" and doc["metadata"]["scan"] == "tiny-counting"
    ids = {n["node_id"]: n for n in doc["nodes"]}
    by_key = {("x0.pre", p): f"E_{t}_{p}" for p, t in enumerate(graph.tokens)}
    assert all(ids[i]["feature_type"] == "embedding" and ids[i]["layer"] == "E" for i in by_key.values())
    links = {(link["source"], link["target"]) for link in doc["links"]}
    assert len(links) == len(pruned.edges) + sum(n["feature_type"] == "logit" for n in doc["nodes"])
    h = graph.n_heads

    def expected_id(key):  # the naming the module's docstring promises, written out again
        short, pos = key
        if short == "x0.pre":
            return by_key[key], "embedding"
        if short.startswith("a") and "." in short:
            layer, head = short[1:].split(".")
            return f"{layer}_{head}_{pos}", "attention head"
        if short.startswith("attn"):
            return f"{short[4:]}_{h}_{pos}", "attention"
        if short.startswith("m"):
            return f"{short[1:]}_{h + 1}_{pos}", "mlp"
        layer, part = short[1:].split(".")
        return f"{layer}_{h + 2 if part == 'mid' else h + 3}_{pos}", "residual"

    for key in pruned.nodes:
        nid, kind = expected_id(key)
        assert ids[nid]["feature_type"] == kind and ids[nid]["ctx_idx"] == key[1], key
        assert ids[nid]["clerp"].startswith(f"{key[0]} @ {key[1]}")
    assert {(expected_id(e[0])[0], expected_id(e[1])[0]) for e in pruned.edges} <= links
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Counting Route.json"]


@pytest.mark.parametrize("args,message", [
    (["--text", "Baiaigiaaggi|q:3"], "not a well-formed counting input"),
    (["--text", "Baixigiaaggi|g:3"], "not a well-formed counting input"),
    (["--text", COUNTING_TEXT, "--target", "%"], "unknown target token '%'"),
    (["--text", COUNTING_TEXT, "--position", "Z"], "'Z' is not a position label"),
    (["--text", COUNTING_TEXT, "--threshold", "2"], "--threshold: expected a share from 0 to 1"),
    (["--text", COUNTING_TEXT, "--node-share", "0"], "--node-share: expected an influence share from 0.01 to 1"),
    (["--text", COUNTING_TEXT, "--edge-share", "1.5"], "--edge-share: expected an influence share from 0.01 to 1"),
])
def test_flow_command_bad_input_is_one_line_exit_2_and_no_file(model_dir, tmp_path, capsys, args, message):
    out = tmp_path / "graph.json"
    assert cli_main(["flow", "--model", str(model_dir), *args, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_flow_command_unknown_model_and_unwritable_path(model_dir, tmp_path, capsys):
    assert cli_main(["flow", "--model", "no-such-model", "--text", COUNTING_TEXT]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert cli_main(["flow", "--model", str(model_dir), "--text", COUNTING_TEXT,
                     "--json", str(blocker / "graph.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write") and "\n" not in err
    assert list(tmp_path.iterdir()) == [blocker]


def test_flow_json_holds_the_pruned_edges_when_pruning_is_asked(model_dir, tmp_path, capsys):
    from engine.flow.prune import prune_by_influence

    out = tmp_path / "pruned.json"
    assert cli_main(["flow", "--model", str(model_dir), "--text", COUNTING_TEXT, "--node-share", "0.7",
                     "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    pruned = prune_by_influence(flow_for_query(load_probed(str(model_dir)), COUNTING_TEXT), node_share=0.7)
    assert len(doc["edges"]) == len(pruned.edges) and doc["pruned"]["node_share"] == 0.7
    kept = {(e[0], e[1]) for e in pruned.edges}
    assert {(tuple(e["src"]), tuple(e["dst"])) for e in doc["edges"]} == kept
    assert "edges kept by influence pruning" in capsys.readouterr().out


class StopsAfter:
    """A cancel event that turns itself on at its n-th look: the flow graph must stop right there."""

    def __init__(self, n: int):
        self.n, self.looks = n, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.n


def test_a_cancelled_flow_graph_stops_at_the_next_layer_and_leaves_the_model_as_it_was(counting):
    from engine.errors import Cancelled

    whole = flow_for_query(counting, COUNTING_TEXT)
    n_layers = counting.config.n_layers
    # looks: one per block in the forward pass, one per layer's decomposition, one per chunk of the
    # vocabulary sweep, one per layer of edges; stopping at each of them stops the graph there
    for n in (1, n_layers, n_layers + 1, 2 * n_layers + 1, 2 * n_layers + 2):
        cancel = StopsAfter(n)
        with pytest.raises(Cancelled):
            flow_for_query(counting, COUNTING_TEXT, cancel=cancel)
        assert cancel.looks == n  # it stopped at the look that saw the event set, not later
    never = StopsAfter(10**9)
    again = flow_for_query(counting, COUNTING_TEXT, cancel=never)  # no hook was left behind by a stopped pass
    assert never.looks > 2 * n_layers + 2
    assert [(e[0], e[1], e[2]) for e in again.edges] == [(e[0], e[1], e[2]) for e in whole.edges]
    assert [n.top for n in again.nodes] == [n.top for n in whole.nodes]
    ids = counting.task.parse_query(COUNTING_TEXT)
    logits = counting.bridge(torch.tensor([ids]))
    assert torch.equal(logits[0], capture(counting.bridge, torch.tensor([ids])).logits)


def test_a_graphs_edges_drop_out_of_the_garbage_collectors_passes(counting):
    """Edges are plain tuples of atoms, which the collector stops tracking after one pass: a
    GPT-2-sized graph has 48,000 of them, and full passes over them held the GIL (engine/flow/graph.py)."""
    import gc

    graph = flow_for_query(counting, COUNTING_TEXT)
    gc.collect()
    gc.collect()  # an edge whose inner tuples were looked at after it goes in the second pass
    assert graph.edges and type(graph.edges[0]) is tuple
    assert not any(gc.is_tracked(e) for e in graph.edges)
    assert not any(gc.is_tracked(e) for e in graph.route)


def test_pair_blocks_change_no_weight(counting, monkeypatch):
    """The attention pairs are measured in blocks (bounded memory on long prompts): a block of 7
    pairs gives every weight bit for bit as one block of all pairs does."""
    import engine.flow.contributions as contributions

    ids = counting.task.parse_query("Baiaigiaaggi|g:3")
    cap = capture(counting.bridge, torch.tensor([ids]))
    whole = [layer_flow(counting.bridge, cap, L) for L in range(counting.config.n_layers)]
    monkeypatch.setattr(contributions, "PAIR_BLOCK", 7)
    blocked = [layer_flow(counting.bridge, cap, L) for L in range(counting.config.n_layers)]
    for a, b in zip(whole, blocked):
        assert torch.equal(a.attn_weight, b.attn_weight) and torch.equal(a.attn_resid_weight, b.attn_resid_weight)
