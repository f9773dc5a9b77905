"""The decoder training recipe: length buckets, hard-site focus, in-training checks, jobs that
train into a new user model."""
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.decoder.job import checkpoint_path, new_user_model
from engine.decoder.loss import sequence_loss
from engine.decoder.pairs import make_pairs
from engine.decoder.train import (
    DecoderTrainConfig,
    QualityPoint,
    new_decoder,
    site_probabilities,
    train_decoder,
)
from engine.errors import Cancelled, StoreError
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.probed.sites import paper_sites
from engine.store.folders import find_model, open_folder
from engine.store.safefiles import load_tensors
from tests.engine.helpers import make_model_folder, run_cli

pytestmark = pytest.mark.slow  # make test-fast leaves these out; CI runs them


@pytest.fixture(scope="module")
def counting():
    probed = build_probed(PAPER_CONFIGS["counting"], seed=0)
    return probed, paper_sites(probed.config)


def test_length_buckets_compute_the_same_loss(counting):
    probed, sites = counting
    rng = np.random.default_rng(5)
    batch = make_pairs(probed, sites, probed.task.split(0).train[:96], rng)
    decoder = new_decoder(probed, DecoderTrainConfig(minutes=1, d_model=32, n_layers=1, n_heads=2), sites)
    pad = probed.task.pad_id
    with torch.inference_mode():
        # independent: the full padded batch, every real next token weighted equally
        logits = decoder(batch.tokens[:, :-1], batch.z, batch.site_ids)
        targets = batch.tokens[:, 1:]
        real = targets != pad
        expected = F.cross_entropy(logits[real], targets[real]).item()
        lengths = (batch.tokens != pad).sum(1)
        assert lengths.float().mean() < 0.85 * lengths.max()  # enough padding for slicing to happen
        for buckets in (1, 2, 4, 7):
            assert sequence_loss(decoder, batch, pad, buckets).item() == pytest.approx(expected, rel=1e-5)


def test_focus_draws_more_pairs_from_weak_sites(counting):
    probed, sites = counting
    names = [s.short for s in sites]
    assert np.allclose(site_probabilities(len(sites), 0.5, None, names), 1 / len(sites))
    rates = {n: 0.9 for n in names} | {"x1.post": 0.1}
    point = QualityPoint(0, 0.0, 0, rates, 1.0)
    p = site_probabilities(len(sites), 0.5, point, names)
    weak = names.index("x1.post")
    assert p.sum() == pytest.approx(1.0) and p[weak] > 3 * p[0]
    assert np.allclose(site_probabilities(len(sites), 0.0, point, names), 1 / len(sites))
    batch = make_pairs(probed, sites, probed.task.split(0).train[:2000], np.random.default_rng(0), p)
    share = (batch.site_ids == weak).float().mean().item()
    assert share == pytest.approx(p[weak], abs=0.04)


def test_in_training_checks_make_a_curve_that_survives_resume(tmp_path):
    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    # budgeted in steps, so that a loaded machine does the same work as an idle one
    cfg = DecoderTrainConfig(minutes=0, steps=6, batch_size=32, warmup=5, d_model=32, n_layers=1, n_heads=2,
                             check_every_steps=2, check_queries=8)
    ckpt = tmp_path / "dec.safetensors"
    seen = []
    _, result = train_decoder(probed, cfg, ckpt, resume=False,
                              on_progress=lambda p: p.quality is not None and seen.append(p.quality))
    names = [s.short for s in paper_sites(probed.config)]
    assert len(result.quality) >= 3 and seen == result.quality
    assert result.quality[0].step == 0 and result.quality[-1].step == result.steps
    assert all(a.step < b.step for a, b in zip(result.quality, result.quality[1:]))  # one point per check, in order
    assert all(list(q.rates) == names and all(0 <= r <= 1 for r in q.rates.values()) for q in result.quality)
    assert len(load_tensors(ckpt)[1]["quality"]) == len(result.quality)

    longer = DecoderTrainConfig(**{**cfg.__dict__, "steps": 8})
    _, again = train_decoder(probed, longer, ckpt, resume=True)
    assert again.quality[: len(result.quality)] == result.quality and len(again.quality) > len(result.quality)


def test_training_can_start_from_another_decoder(tmp_path):
    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    sites = paper_sites(probed.config)
    cfg = DecoderTrainConfig(minutes=0.5 / 60, batch_size=32, lr=1e-9, warmup=1, d_model=32, n_layers=1,
                             n_heads=2, check_every_s=0)
    start = new_decoder(probed, DecoderTrainConfig(**{**cfg.__dict__, "seed": 99}), sites).state_dict()
    decoder, _ = train_decoder(probed, cfg, tmp_path / "c.safetensors", resume=False, init_state=start)
    # a learning rate of 1e-9 leaves the weights where they started
    for name, value in decoder.state_dict().items():
        assert torch.allclose(value, start[name], atol=1e-5), name


def test_new_user_model_copies_the_probed_weights(tmp_path):
    base = find_model("addition")
    made = new_user_model(base, "addition-try")
    assert made.source == "user" and made.task == "addition" and not made.has_decoder
    assert (made.path / "probed.safetensors").read_bytes() == (base.path / "probed.safetensors").read_bytes()
    assert new_user_model(base, "addition-try").path == made.path  # same weights: resumable
    # the checkpoint is keyed by the folder's full path: a same-named folder elsewhere has its own run
    assert checkpoint_path(made).name.startswith("decoder-addition-addition-try-")
    elsewhere = replace(made, path=tmp_path / "other" / "addition-try")
    assert checkpoint_path(elsewhere) != checkpoint_path(made)
    assert checkpoint_path(elsewhere).parent == checkpoint_path(made).parent
    with pytest.raises(StoreError, match="already exists.*other probed weights"):
        new_user_model(find_model("counting"), "addition-try")
    for bad in ("", "../up", "a b", "-x", "x" * 65):
        with pytest.raises(StoreError, match="is not allowed"):
            new_user_model(base, bad)


def test_cli_rejects_bad_recipe_options(tmp_path):
    r = run_cli("train-probed", "counting", "--balance-lengths", "1.5")
    assert r.returncode == 2 and "--balance-lengths: expected a share from 0 to 1" in r.stderr
    assert "Traceback" not in r.stderr
    folder = make_model_folder(tmp_path / "bare", "addition")
    r = run_cli("train-decoder", "addition", "--model", str(folder), "--init-from", str(folder), "--minutes", "0.01")
    assert r.returncode == 2 and "has no decoder" in r.stderr and "Traceback" not in r.stderr
    assert not (folder / "decoder.safetensors").exists()
    assert open_folder(folder).decoder is None


def test_stopping_during_a_check_does_not_wait_for_it(tmp_path):
    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    cfg = DecoderTrainConfig(minutes=1, batch_size=16, d_model=32, n_layers=1, n_heads=2, check_every_s=1.0,
                             check_queries=8)
    calls = iter(range(10**6))
    sites_checked = []
    # call 0: the loop's first look (go on); calls 1..: between the sites of the first check
    with pytest.raises(Cancelled):
        train_decoder(probed, cfg, tmp_path / "c.safetensors", resume=False,
                      should_stop=lambda: sites_checked.append(1) or next(calls) >= 2)
    meta = load_tensors(tmp_path / "c.safetensors")[1]
    assert meta["quality"] == [] and meta["step"] == 1  # the check was dropped; one step, then the stop
    assert len(sites_checked) == 4  # loop, 2 sites, loop: the other 11 sites were never tested


def test_cli_refuses_a_start_or_resume_of_another_size(tmp_path):
    folder = make_model_folder(tmp_path / "small", "addition", decoder_steps=2)  # d_model 32, 1 layer
    before = (folder / "decoder.safetensors").read_bytes()
    r = run_cli("train-decoder", "addition", "--model", str(folder), "--init-from", str(folder), "--minutes", "0.01")
    assert r.returncode == 2 and "choose that size to start from it" in r.stderr and "Traceback" not in r.stderr
    assert (folder / "decoder.safetensors").read_bytes() == before

    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    small = DecoderTrainConfig(minutes=0.5 / 60, batch_size=16, d_model=32, n_layers=1, n_heads=2, check_every_s=0)
    entry = open_folder(folder)
    train_decoder(probed, small, checkpoint_path(entry), resume=False)
    r = run_cli("train-decoder", "addition", "--model", str(folder), "--minutes", "0.01")
    assert r.returncode == 2 and "has d_model 32, not 128" in r.stderr and "Traceback" not in r.stderr
