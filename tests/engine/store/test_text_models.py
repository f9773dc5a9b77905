"""Real language models from Hugging Face folders: built here (random weights, a tokenizer trained on
the spot), put where a download would land (the hub cache) or opened as folders, and read the way
the field reads them (TransformerLens's bridge with HookedTransformer's weight processing)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from engine.cli.main import main as cli_main
from engine.flow.build import flow_for_query
from engine.probed.reader import BridgeReader, reader_for
from engine.probed.sites import all_sites, read_sites
from engine.store.folders import find_model, list_models, load_probed
from tests.engine.helpers import TEXT_CORPUS, make_text_folder, train_tokenizer
from tests.engine.store.test_hf_folders import cache_repo

PROMPT = "When Mary and John went to the store, John gave a drink to"


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer()


@pytest.fixture(scope="module", params=["gpt2", "llama", "neox"])
def cached(request, tmp_path_factory, tok):
    """A tiny model of each family in a hub cache of its own, as `from_pretrained` leaves one."""
    src = make_text_folder(tmp_path_factory.mktemp("src") / request.param, request.param, tok=tok)
    cache = tmp_path_factory.mktemp("hub")
    files = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    snapshot = cache_repo(cache, f"tiny/{request.param}", files)
    return request.param, cache, snapshot


def test_a_cached_text_model_opens_by_id_and_its_sites_equal_the_bridges(cached, monkeypatch):
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM

    family, cache, snapshot = cached
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    before = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}
    entry = find_model(f"tiny/{family}")
    assert entry.source == "hub" and entry.task == "text" and entry.path == snapshot
    model = load_probed(entry)
    ids = model.task.parse_query(PROMPT)
    assert ids[0] == model.task.bos_id and len(ids) > 10  # GPT-2's convention: <|endoftext|> first
    tokens = torch.tensor([ids])

    # an independent bridge, processed the HookedTransformer way, read with run_with_cache
    theirs = TransformerBridge.boot_transformers(str(snapshot), device="cpu")
    theirs.enable_compatibility_mode(disable_warnings=True)
    _, cache_ = theirs.run_with_cache(tokens)
    sites = all_sites(model.config)
    ours = read_sites(model.bridge, tokens, sites)
    for site in sites:
        if site.kind != "head":
            assert torch.allclose(ours[site.short], cache_[site.hook], atol=1e-5), site.short
    for L in range(model.config.n_layers):  # the heads' results and b_O add up to the attention output
        heads = sum(ours[f"a{L}.{h}"] for h in range(model.config.n_heads))
        b_o = model.bridge.blocks[L].attn.b_O
        total = heads + (b_o if b_o is not None else 0)
        assert torch.allclose(total, cache_[f"blocks.{L}.hook_attn_out"], atol=1e-5), L

    # a query's re-runs read through the bridge: no second copy of the weights, same values
    reader = reader_for(model)
    assert isinstance(reader, BridgeReader)
    assert not [v for v in vars(reader).values() if isinstance(v, torch.Tensor)]
    for site in [s for s in sites if s.short in ("x0.mid", "a0.1", "m1", "x1.post")]:  # no x0.mid in NeoX
        assert torch.allclose(reader.read(tokens, site), ours[site.short], atol=1e-5), site.short
    # GPT-NeoX runs attention and the MLP in parallel on x{L}.pre: no x{L}.mid anywhere
    assert model.config.parallel_attn_mlp == entry.probed.parallel_attn_mlp == (family == "neox")
    assert any(s.kind == "resid_mid" for s in sites) == (family != "neox")

    # the last layer's logit lens is the model's own next-token distribution (unprocessed Hugging Face)
    graph = flow_for_query(model, PROMPT, top_k=3)
    hf = AutoModelForCausalLM.from_pretrained(str(snapshot), attn_implementation="eager").eval()
    with torch.no_grad():
        probs = hf(tokens).logits[0].softmax(-1)
    last = f"x{model.config.n_layers - 1}.post"
    for p in range(len(ids)):
        token, prob = graph.node(last, p).top[0]
        assert token == int(probs[p].argmax()) and prob == pytest.approx(float(probs[p].max()), rel=1e-3)

    # contributions into every residual node sum to 1
    into: dict = {}
    for e in graph.edges:
        if e[1][0].startswith("x"):
            into[e[1]] = into.get(e[1], 0.0) + e[2]
    assert into and all(abs(total - 1) < 1e-4 for total in into.values()), into
    assert before == {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}  # nothing written there


def test_the_token_strip_shows_bpe_tokens_readably_and_positions_go_by_token_text(tmp_path, tok):
    folder = make_text_folder(tmp_path / "gpt2", tok=tok, n_ctx=24)
    task = find_model(str(folder)).load_task()  # no torch: the app tokenizes while the model loads
    ids = task.parse_query("When Mary went\nto")
    labels = task.position_labels(ids)
    assert labels[0] == "<|endoftext|>" and "␣Mary" in labels and "↵" in "".join(labels)
    assert task.vocab._strings is None  # a token strip decodes its own tokens, not the whole vocabulary
    one_by_one = task.vocab.token_strings(range(task.vocab.vocab_size))
    assert labels == [task.vocab.strings()[i] for i in ids] and one_by_one == task.vocab.strings()
    assert task.query_text(ids) == "When Mary went\nto"
    assert task.resolve_position(ids, "␣Mary") == labels.index("␣Mary")
    assert task.vocab.token_id(" Mary") == task.vocab.token_id("␣Mary") == ids[labels.index("␣Mary")]
    with pytest.raises(Exception, match=r"tokens long with BOS; this model's context holds at most 24"):
        task.parse_query(PROMPT * 3)
    # GPT-2's original pair of files tokenizes the same way
    pair = make_text_folder(tmp_path / "pair", tok=tok, tokenizer="pair")
    assert not (pair / "tokenizer.json").exists()
    assert find_model(str(pair)).load_task().parse_query("When Mary went\nto") == ids


def test_the_commands_read_a_text_model_folder(tmp_path, tok, capsys):
    folder = make_text_folder(tmp_path / "llama", "llama", tok=tok, weights="bin")
    before = digest(folder)
    assert cli_main(["sites", "--model", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "blocks.1.attn.hook_z[3]" in out and "blocks.0.hook_resid_mid" in out
    assert cli_main(["sites", "--model", str(folder), "--text", PROMPT, "--site", "a1.2",
                     "--position", "␣John"]) == 2  # John appears twice: the message says so
    assert "names several positions" in capsys.readouterr().err
    assert cli_main(["sites", "--model", str(folder), "--text", PROMPT, "--site", "a1.2", "--position", "3"]) == 0
    assert "a1.2 (blocks.1.attn.hook_z[2]) at position 3" in capsys.readouterr().out
    assert cli_main(["flow", "--model", str(folder), "--text", PROMPT, "--target", "␣Mary"]) == 0
    out = capsys.readouterr().out
    assert "target '␣Mary'" in out and "route to x1.post" in out
    assert digest(folder) == before  # pytorch_model.bin read with weights_only; nothing written


def test_bad_text_model_folders_are_one_line_each_and_nothing_is_written(tmp_path, tok, capsys):
    good = make_text_folder(tmp_path / "good", tok=tok)
    no_weights = make_text_folder(tmp_path / "no-weights", tok=tok)
    (no_weights / "model.safetensors").unlink()
    remote = make_text_folder(tmp_path / "remote", tok=tok)
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XModel"}
    (remote / "config.json").write_text(json.dumps(config))
    unsupported = make_text_folder(tmp_path / "unsupported", tok=tok)
    config = json.loads((unsupported / "config.json").read_text())
    config["architectures"] = ["MadeUpForCausalLM"]
    (unsupported / "config.json").write_text(json.dumps(config))
    corrupt = make_text_folder(tmp_path / "corrupt", tok=tok)
    (corrupt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    no_tokenizer = make_text_folder(tmp_path / "no-tokenizer", tok=tok)
    (no_tokenizer / "tokenizer.json").unlink()
    cases = [(no_weights, "no weights (expected one of model.safetensors"), (remote, "never runs"),
             (unsupported, "TransformerLens does not support MadeUpForCausalLM; it supports "),
             (corrupt, "corrupt/model.safetensors: not a readable safetensors file"),
             (no_tokenizer, "no tokenizer (expected tokenizer.json, or vocab.json and merges.txt)")]
    for folder, says in cases:
        before = digest(folder)
        assert cli_main(["flow", "--model", str(folder), "--text", PROMPT]) == 2, folder.name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and says in err, (folder.name, err)
        assert "Traceback" not in err and digest(folder) == before
    cli_main(["flow", "--model", str(unsupported), "--text", PROMPT])
    err_line = capsys.readouterr().err
    assert "GPT2LMHeadModel" in err_line and "LlamaForCausalLM" in err_line  # what is supported
    assert cli_main(["flow", "--model", str(good), "--text", PROMPT]) == 0


def test_models_lists_cached_text_models_and_the_picker_sees_them(cached, monkeypatch, capsys):
    family, cache, _ = cached
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert cli_main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"tiny/{family} "))
    assert "opens as a text model (2 layers, 4 heads, d_model 64)" in line
    assert any(e.name == f"tiny/{family}" and e.task == "text" for e in list_models(include_cache=True))


def test_parallel_attention_is_read_from_the_hugging_face_config():
    from engine.store.text_models import parallel_attention

    cases = [({}, "GPT2LMHeadModel", False), ({}, "LlamaForCausalLM", False),
             ({"use_parallel_residual": True}, "GPTNeoXForCausalLM", True),
             ({}, "GPTNeoXForCausalLM", True),  # Hugging Face's default for NeoX
             ({"use_parallel_residual": False}, "GPTNeoXForCausalLM", False),
             ({}, "GPTJForCausalLM", True), ({}, "PhiForCausalLM", True),
             ({"parallel_attn": False}, "FalconForCausalLM", False), ({}, "FalconForCausalLM", True),
             ({"use_parallel_residual": True}, "StableLmForCausalLM", True), ({}, "StableLmForCausalLM", False)]
    for config, arch, parallel in cases:
        assert parallel_attention(config, arch) is parallel, (config, arch)


def test_a_neox_model_works_from_the_command_line_and_its_decoder_answers_queries(tmp_path, tok, capsys):
    """Sites, flow, patching, decoder training and a query, on GPT-NeoX's parallel blocks."""
    folder = make_text_folder(tmp_path / "neox", "neox", tok=tok, n_ctx=32)
    assert json.loads((folder / "config.json").read_text())["use_parallel_residual"] is True
    assert cli_main(["sites", "--model", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "blocks.1.hook_mlp_out" in out and "hook_resid_mid" not in out and "x0.mid" not in out
    assert cli_main(["sites", "--model", str(folder), "--text", PROMPT, "--site", "x0.mid", "--position", "3"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: x0.mid does not exist in a parallel-attention model (GPT-NeoX, GPT-J): attention and "
                   "MLP both read x0.pre\n")
    assert cli_main(["flow", "--model", str(folder), "--text", PROMPT, "--node-share", "0.8",
                     "--neuronpedia", str(tmp_path / "np.json")]) == 0
    out = capsys.readouterr().out
    assert "route to x1.post" in out and "x0.mid" not in out and (tmp_path / "np.json").is_file()

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXT_CORPUS) + "\n", encoding="utf-8")
    assert cli_main(["train-decoder", "--model", str(folder), "--corpus", str(corpus), "--into", "neox-iv",
                     "--steps", "3", "--batch-size", "8", "--d-model", "32", "--layers", "1", "--heads", "2",
                     "--length", "16", "--check-every", "0", "--threads", "1"]) == 0
    capsys.readouterr()
    entry = find_model("neox-iv")
    assert entry.probed.parallel_attn_mlp and entry.has_decoder
    assert json.loads((entry.path / "inversionview.json").read_text())["probed"]["parallel_attn_mlp"] is True
    assert entry.decoder["sites"] == [s.id for s in all_sites(entry.probed)
                                      if s.kind in ("head", "mlp_out") or s.short == "x0.pre"]
    model = load_probed(entry)
    assert isinstance(reader_for(model), BridgeReader)
    from engine.probed.reader import fast_reader_for

    assert fast_reader_for(model) is None  # the fused GPT-2 path does not run rotary, parallel blocks
    for site in ("a1.2", "m0"):
        assert cli_main(["query", "--model", "neox-iv", "--text", PROMPT, "--site", site, "--position", "5",
                         "--candidates", "16", "--top", "3"]) == 0
        assert "candidates within epsilon" in capsys.readouterr().out
