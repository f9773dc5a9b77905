"""Sites: the catalogue's names and hooks, and reading activations against a full forward pass."""
import numpy as np
import pytest
import torch

from engine.errors import SiteError
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.probed.reader import SiteReader
from engine.probed.sites import all_sites, get_site, paper_sites, read_site, read_sites


@pytest.fixture(scope="module", params=["counting", "addition"])
def model(request):
    return build_probed(PAPER_CONFIGS[request.param], seed=1)


def test_catalogue_uses_paper_names_and_hook_names():
    sites = {s.short: s for s in all_sites(PAPER_CONFIGS["addition"])}
    assert sites["x0.pre"].hook == "blocks.0.hook_resid_pre"
    assert sites["x1.mid"].hook == "blocks.1.hook_resid_mid"
    assert sites["a1.3"].id == "blocks.1.attn.hook_z[3]" and sites["a1.3"].head == 3
    assert sites["m0"].hook == "blocks.0.hook_mlp_out" and sites["attn1"].hook == "blocks.1.hook_attn_out"
    assert [s.short for s in paper_sites(PAPER_CONFIGS["counting"])] == [
        "x0.pre", "a0.0", "x0.mid", "m0", "x0.post", "a1.0", "x1.mid", "m1", "x1.post"]
    assert len(paper_sites(PAPER_CONFIGS["addition"])) == 13


def test_get_site_by_short_hook_or_id_and_unknown():
    cfg = PAPER_CONFIGS["counting"]
    assert get_site(cfg, "blocks.1.hook_resid_post").short == "x1.post"
    assert get_site(cfg, "blocks.0.attn.hook_z[0]").short == "a0.0"
    with pytest.raises(SiteError, match="unknown site 'a0.3'.*sites: x0.pre a0.0"):
        get_site(cfg, "a0.3")


def test_every_site_matches_a_full_forward_pass(model):
    tokens = torch.as_tensor(model.task.random_inputs(16, np.random.default_rng(0)))
    _, cache = model.bridge.run_with_cache(tokens)
    got = read_sites(model.bridge, tokens, all_sites(model.config))
    for site in all_sites(model.config):
        ref = cache[site.hook]
        if site.kind == "head":
            # head H's output: its z times W_O[H], computed here by hand from the weights
            w_o = model.bridge.blocks[site.layer].attn.W_O[site.head]
            ref = torch.einsum("btd,dm->btm", ref[:, :, site.head], w_o)
        torch.testing.assert_close(got[site.short], ref, msg=site.short)


def test_fast_reader_matches_the_bridge_at_every_site(model):
    """The hook-free re-run path gives the bridge's activations, for padded and cut grids alike."""
    reader = SiteReader(model)
    full = torch.as_tensor(model.task.random_inputs(32, np.random.default_rng(3)))
    for tokens in (full, full[:, :9]):
        for site in all_sites(model.config):
            ref = read_site(model.bridge, tokens, site)
            torch.testing.assert_close(reader.read(tokens, site), ref, rtol=1e-4, atol=1e-5, msg=site.short)


def test_head_outputs_sum_to_attention_output(model):
    tokens = torch.as_tensor(model.task.random_inputs(4, np.random.default_rng(1)))
    for layer in range(model.config.n_layers):
        heads = [s for s in all_sites(model.config) if s.kind == "head" and s.layer == layer]
        acts = read_sites(model.bridge, tokens, heads)
        total = sum(acts[s.short] for s in heads) + model.bridge.blocks[layer].attn.b_O
        torch.testing.assert_close(total, read_site(model.bridge, tokens, get_site(model.config, f"attn{layer}")))


def test_reading_stops_at_the_site_layer(model):
    """Layer-0 sites must not run block 1: a hook on block 1 never fires."""
    fired = []
    model.bridge.blocks[1].hook_out.add_hook(lambda t, hook: fired.append(hook.name))
    try:
        tokens = torch.as_tensor(model.task.random_inputs(2, np.random.default_rng(2)))
        read_site(model.bridge, tokens, get_site(model.config, "x0.post"))
        assert fired == []
        read_site(model.bridge, tokens, get_site(model.config, "x1.post"))
        assert fired
    finally:
        model.bridge.reset_hooks()


def test_hooked_passes_on_one_bridge_from_two_threads_do_not_see_each_other(model):
    """The app reads sites on the engine thread while the flow thread captures a graph's forward
    pass on the same bridge: each must get its own input's activations."""
    import threading

    from engine.flow.contributions import capture

    task = model.task
    a = torch.tensor([task.parse_query(task.examples()[0])])
    b = torch.tensor([task.parse_query(task.examples()[1])])
    site = get_site(model.config, "x1.mid")
    with torch.no_grad():
        want_a = read_site(model.bridge, a, site).clone()
        want_b = capture(model.bridge, b).resid_mid[1].clone()
    assert a.shape != b.shape or not torch.equal(a, b)
    wrong = []

    def reads():
        for _ in range(60):
            with torch.no_grad():
                if not torch.allclose(read_site(model.bridge, a, site), want_a):
                    wrong.append("read_sites")

    def captures():
        for _ in range(60):
            with torch.no_grad():
                got = capture(model.bridge, b).resid_mid[1]
                if got.shape != want_b.shape or not torch.allclose(got, want_b):
                    wrong.append("capture")

    threads = [threading.Thread(target=reads), threading.Thread(target=captures)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_a_parallel_attention_model_has_no_mid_site_and_says_why():
    from engine.patching.nodes import all_nodes
    from engine.probed.config import ProbedConfig
    from engine.probed.sites import flow_sites, previous_resid

    cfg = ProbedConfig("text", n_layers=2, n_heads=2, d_model=16, d_mlp=64, n_ctx=8, d_vocab=50,
                       act_fn="gelu", parallel_attn_mlp=True)
    assert [s.short for s in all_sites(cfg)] == ["x0.pre", "a0.0", "a0.1", "attn0", "m0", "x0.post",
                                                 "x1.pre", "a1.0", "a1.1", "attn1", "m1", "x1.post"]
    assert [s.short for s in flow_sites(2, 2, parallel=True)] == ["x0.pre", "a0.0", "a0.1", "m0", "x0.post",
                                                                  "a1.0", "a1.1", "m1", "x1.post"]
    assert [n.site for n in all_nodes(cfg, 1)] == [s.short for s in flow_sites(2, 2, parallel=True)]
    assert previous_resid("x1.post", parallel=True) == "x0.post" and previous_resid("x0.post", True) == "x0.pre"
    assert previous_resid("x1.post") == "x1.mid"  # a sequential model's
    for name in ("x1.mid", "blocks.1.hook_resid_mid"):
        with pytest.raises(SiteError) as e:
            get_site(cfg, name)
        assert str(e.value) == ("x1.mid does not exist in a parallel-attention model (GPT-NeoX, GPT-J): "
                                "attention and MLP both read x1.pre")
    with pytest.raises(SiteError, match="unknown site 'x2.mid'"):
        get_site(cfg, "x2.mid")
    # the record: the flag travels, and records without it (every model before) are sequential
    assert ProbedConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["parallel_attn_mlp"] is True
    sequential = {k: v for k, v in cfg.to_dict().items() if k != "parallel_attn_mlp"}
    assert ProbedConfig.from_dict(sequential).parallel_attn_mlp is False
    assert "parallel_attn_mlp" not in PAPER_CONFIGS["counting"].to_dict()  # records written as before
    with pytest.raises(ValueError, match="parallel_attn_mlp must be true or false"):
        ProbedConfig.from_dict({**sequential, "parallel_attn_mlp": "yes"})
    with pytest.raises(ValueError, match="parallel_attn_mlp is for text models"):
        ProbedConfig.from_dict({**PAPER_CONFIGS["counting"].to_dict(), "parallel_attn_mlp": True})
