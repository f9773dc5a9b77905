"""Decoders for text models: a tiny Hugging Face GPT-2 built here trains a decoder on a corpus, and
its queries rank samples whose distances match the model's own full forward pass."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.decoder.config import DecoderTrainConfig
from engine.decoder.inputs import decoder_length, inputs_for
from engine.decoder.loss import chunked_cross_entropy, sequence_loss
from engine.decoder.pairs import make_pairs
from engine.decoder.train import new_decoder, train_decoder
from engine.probed.sites import chosen_sites, paper_sites, read_rows, read_sites
from engine.query.run import load_inverter, run_query
from engine.query.types import TEXT_SCHEDULE, default_options
from engine.store.folders import load_probed, open_folder
from engine.tasks.base import TaskInputError
from tests.engine.helpers import TEXT_CORPUS, make_text_folder, run_cli


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = make_text_folder(tmp_path_factory.mktemp("text") / "tiny-gpt2", n_layers=2, n_heads=4, d_model=64)
    corpus = folder.parent / "corpus.txt"
    corpus.write_text("\n\n".join(TEXT_CORPUS) + "\n", encoding="utf-8")  # blank lines between texts
    return folder, corpus


def test_text_decoder_layout_adds_its_own_end_and_padding(text_model):
    folder, corpus = text_model
    probed = load_probed(open_folder(folder))
    task = probed.task
    V = probed.config.d_vocab
    assert (task.decoder_vocab_size, task.decoder_eos_id, task.decoder_pad_id) == (V + 2, V, V + 1)
    inputs = inputs_for(task, corpus, decoder_length(task, 16))
    rows = np.concatenate([inputs.train, inputs.test])
    assert rows.shape[1] == 16 and (rows[:, 0] == task.bos_id).all()
    assert ((rows == task.decoder_eos_id).sum(axis=1) == 1).all()  # one end per row, then padding
    first_text = task.vocab.encode(TEXT_CORPUS[0])
    assert any(task.sample_ids(r)[1:] == first_text[:14] for r in rows)  # a long text cut into windows
    assert (task.model_grid(rows) < V).all()  # what the model reads has only its own ids
    # the paper's text sites: x0.pre, every head, every MLP out
    assert [s.short for s in paper_sites(probed.config)] == ["x0.pre", "a0.0", "a0.1", "a0.2", "a0.3", "m0",
                                                              "a1.0", "a1.1", "a1.2", "a1.3", "m1"]
    with pytest.raises(TaskInputError, match="--corpus"):
        inputs_for(task, None, 16)
    with pytest.raises(TaskInputError, match="3 to 64"):
        decoder_length(task, 65)


def test_pairs_keep_only_the_vectors_they_need(text_model):
    folder, corpus = text_model
    probed = load_probed(open_folder(folder))
    sites = paper_sites(probed.config)
    tokens = torch.as_tensor(probed.task.model_grid(inputs_for(probed.task, corpus, 16).train[:12]))
    site_ids = torch.arange(12) % len(sites)
    positions = torch.arange(12) % 5 + 1
    rows = read_rows(probed.bridge, tokens, sites, site_ids, positions)  # (12, d)
    full = read_sites(probed.bridge, tokens, sites)
    expected = torch.stack([full[sites[s].short][b, p] for b, (s, p) in enumerate(zip(site_ids, positions))])
    torch.testing.assert_close(rows, expected)


def test_chunked_cross_entropy_equals_the_full_one():
    torch.manual_seed(0)
    h = torch.randn(50, 16, requires_grad=True)
    w = torch.randn(300, 16, requires_grad=True)
    targets = torch.randint(0, 300, (50,))
    full = F.cross_entropy(h @ w.T, targets, reduction="sum")
    gh, gw = torch.autograd.grad(full, (h, w))
    chunked = chunked_cross_entropy(h, w, targets, chunk_logits=300 * 7)  # 7 rows per chunk
    ch, cw = torch.autograd.grad(chunked, (h, w))
    torch.testing.assert_close(chunked, full)
    torch.testing.assert_close(ch, gh)
    torch.testing.assert_close(cw, gw)


def test_a_text_decoder_trains_on_a_corpus_and_queries_match_the_full_forward_pass(text_model, tmp_path):
    folder, corpus = text_model
    probed = load_probed(open_folder(folder))
    task = probed.task
    inputs = inputs_for(task, corpus, decoder_length(task, 24))
    cfg = DecoderTrainConfig(minutes=0, steps=100, batch_size=32, d_model=32, n_layers=1, n_heads=2, lr=3e-3,
                             warmup=5, length=24, check_every_steps=0)
    sites = chosen_sites(probed.config, None)
    held = make_pairs(probed, sites, inputs.train[:64], np.random.default_rng(5))  # a tiny corpus: no generalising
    with torch.inference_mode():
        before = sequence_loss(new_decoder(probed, cfg, sites), held, task.decoder_pad_id).item()
    decoder, result = train_decoder(probed, cfg, tmp_path / "run.safetensors", resume=False, inputs=inputs)
    with torch.inference_mode():
        after = sequence_loss(decoder, held, task.decoder_pad_id).item()
    assert result.steps == 100 and after < before - 1.0  # about ln(302) = 5.7 at the start

    from engine.decoder.files import save_decoder

    save_decoder(folder, decoder, result.sites, {"command": "tests", "inputs": inputs.source})
    inv = load_inverter(open_folder(folder), precision="fp32")
    options = default_options(task, candidates=48, seed=3)
    assert options.schedule == TEXT_SCHEDULE and options.metric == "cosine"
    query = "When Mary and John went to the store, John gave a drink to"
    q_ids = task.parse_query(query)
    r = run_query(inv, query, "a1.2", len(q_ids) - 1, options)  # the last token, as the app starts
    assert r.complete and len(r.samples) > 5
    assert [s.rank for s in r.samples] == list(range(1, len(r.samples) + 1))
    assert all(a.distance <= b.distance for a, b in zip(r.samples, r.samples[1:]))

    # independently: the bridge's full forward pass (every layer, no stop), head 2's result at layer 1
    bridge = probed.bridge
    w_o = bridge.blocks[1].attn.W_O[2]

    def head_out(ids):
        with torch.inference_mode():
            _, cache = bridge.run_with_cache(torch.tensor([ids]))
            return cache["blocks.1.attn.hook_z"][0, :, 2] @ w_o  # (T, d)

    z_q = head_out(q_ids)[len(q_ids) - 1]
    for s in r.samples[:12]:
        acts = head_out(s.tokens)
        d = 1 - F.cosine_similarity(acts, z_q[None], dim=-1)
        content = [i for i, t in enumerate(s.tokens) if t != task.bos_id]
        assert s.distance == pytest.approx(float(d[content].min()), abs=1e-4)
        assert s.compared_position == content[int(d[content].argmin())]
        assert s.tokens[0] == task.bos_id and all(t < probed.config.d_vocab for t in s.tokens)

    # bf16 re-runs: distances within a few thousandths, and the epsilon line exact (re-checked in fp32)
    fast = load_inverter(open_folder(folder), precision="bf16")
    assert fast.fast_reader is not None
    eps = r.samples[len(r.samples) // 2].distance  # half the samples inside: many near the line
    exact = {tuple(s.tokens): s.distance for s in run_query(inv, query, "a1.2", len(q_ids) - 1,
                                                             default_options(task, candidates=48, seed=3,
                                                                             epsilon=eps)).samples}
    fast_result = run_query(fast, query, "a1.2", len(q_ids) - 1, default_options(task, candidates=48, seed=3,
                                                                                  epsilon=eps))
    checked = 0
    for s in fast_result.samples:
        if tuple(s.tokens) in exact:  # bf16 sampling may draw other samples; compare the shared ones
            checked += 1
            assert s.distance == pytest.approx(exact[tuple(s.tokens)], abs=0.01)
            assert s.in_epsilon == (exact[tuple(s.tokens)] <= eps)
    assert checked >= 5


def test_train_and_eval_decoder_commands_on_a_text_model(text_model, tmp_path):
    folder, corpus = text_model
    copy = tmp_path / "model"
    copy.mkdir()
    for f in folder.iterdir():
        if f.is_file() and f.name not in ("decoder.safetensors", "inversionview.json"):
            (copy / f.name).write_bytes(f.read_bytes())
    run = run_cli("train-decoder", "--model", str(copy), "--corpus", str(corpus), "--steps", "12",
                  "--batch-size", "16", "--d-model", "32", "--layers", "1", "--heads", "2", "--length", "20",
                  "--sites", "x0.pre,a1.0,m1", "--check-every", "0", timeout=300)
    assert run.returncode == 0, run.stderr
    assert "held-out windows" in run.stdout
    record = json.loads((copy / "inversionview.json").read_text())
    assert record["decoder"]["training"]["inputs"]["kind"] == "corpus"
    assert record["decoder"]["sites"] == ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_z[0]", "blocks.1.hook_mlp_out"]
    assert (copy / "decoder.safetensors").is_file() and (copy / "config.json").is_file()  # Hugging Face's kept
    ev = run_cli("eval-decoder", "--model", str(copy), "--queries", "8", timeout=300)
    assert ev.returncode == 0, ev.stderr
    assert "1 - cosine" in ev.stdout and "a1.0" in ev.stdout

    # --into: a user model that keeps the decoder and names the Hugging Face folder (no weight copy)
    before = sorted(p.name for p in copy.iterdir())
    run = run_cli("train-decoder", "--model", str(copy), "--corpus", str(corpus), "--into", "tiny-iv", "--steps", "4",
                  "--batch-size", "8", "--d-model", "32", "--layers", "1", "--heads", "2", "--length", "20",
                  "--check-every", "0", timeout=300)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in copy.iterdir()) == before  # the model's own folder is not touched
    from engine.store.folders import find_model

    entry = find_model("tiny-iv")
    assert entry.has_decoder and not (entry.path / "model.safetensors").exists()
    assert load_inverter(entry).probed.task.decoder_vocab_size == load_probed(open_folder(copy)).task.decoder_vocab_size

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nanother\n\xff\xfe broken\n")
    run = run_cli("train-decoder", "--model", str(copy), "--corpus", str(bad), "--steps", "1", timeout=300)
    assert run.returncode == 2 and "line 3" in run.stderr and "Traceback" not in run.stderr
    run = run_cli("train-decoder", "--model", str(copy), "--corpus", str(tmp_path / "missing.txt"), "--steps", "1")
    assert run.returncode == 2 and "missing.txt" in run.stderr and "Traceback" not in run.stderr
    run = run_cli("train-decoder", "--model", str(copy), "--corpus", str(corpus), "--sites", "x9.pre", "--steps", "1")
    assert run.returncode == 2 and "x9.pre" in run.stderr


def test_token_probabilities_in_chunks_equal_the_full_softmax(monkeypatch):
    import engine.query.run as run

    monkeypatch.setattr(run, "DRAW_LOGITS", 300 * 5)  # 5 rows per chunk
    torch.manual_seed(1)
    h, w = torch.randn(3, 7, 16), torch.randn(300, 16)
    targets = torch.randint(0, 300, (3, 7))
    full = torch.softmax(h @ w.T, dim=-1).gather(-1, targets[..., None])[..., 0]
    torch.testing.assert_close(run.token_probabilities(h, w, targets), full)
