"""The probed models' fine-tuning recipe: length-balanced and error-focused batches, and
attention softened at the start and restored to the model's own scale at the end."""
import numpy as np
import pytest
import torch

from engine.probed.evaluate import score_probed
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.probed.train import (
    ProbedTrainConfig,
    draw_batch,
    error_weights,
    length_balanced_weights,
    length_errors,
    set_attention_temperature,
    train_probed,
)
from engine.store.folders import load_probed
from engine.store.safefiles import load_tensors
from tests.engine.helpers import run_cli

pytestmark = pytest.mark.slow  # make test-fast leaves these out; CI runs them

PAD = 39  # counting's padding token


def counting_tokens(n=50_000):
    return build_probed(PAPER_CONFIGS["counting"]).task.split(0).train[:n]


def test_length_balanced_batches():
    tokens = counting_tokens()
    lengths = (tokens != PAD).sum(1)
    w = length_balanced_weights(tokens, PAD)
    mass = {int(n): w[lengths == n].sum() for n in np.unique(lengths)}
    assert np.allclose(list(mass.values()), 1 / len(mass))
    rng = np.random.default_rng(0)
    drawn = lengths[draw_batch(rng, len(tokens), 20_000, [(1.0, w)])]
    # the rarest lengths (3 letters, 27 letters) are far more common than in a uniform draw
    assert (drawn == lengths.min()).mean() > 5 * (lengths == lengths.min()).mean()
    assert len(draw_batch(rng, len(tokens), 64, [(0.25, w)])) == 64


def test_error_focused_batches_follow_the_error_rates():
    tokens = counting_tokens()
    lengths = (tokens != PAD).sum(1)
    errors = {30: 0.6, 32: 0.3}  # every other length: no errors
    w = error_weights(tokens, PAD, errors, floor=0.01)
    rng = np.random.default_rng(1)
    idx = draw_batch(rng, len(tokens), 40_000, [(0.5, w)])
    focused = lengths[idx[20_000:]]  # the uniform part comes first
    n_lengths = len(np.unique(lengths))
    # shares: (0.6 + 0.01) / total and (0.3 + 0.01) / total, total = 0.9 + 0.01 * n_lengths
    total = 0.9 + 0.01 * n_lengths
    assert abs((focused == 30).mean() - 0.61 / total) < 0.015
    assert abs((focused == 32).mean() - 0.31 / total) < 0.015
    assert (focused == 20).mean() < 0.02  # common in uniform draws, rare here
    assert abs((lengths[idx[:20_000]] == 20).mean() - (lengths == 20).mean()) < 0.01


def test_length_errors_agree_with_scoring_each_length_alone():
    model = load_probed("counting")
    tokens = counting_tokens(20_000)
    lengths = (tokens != PAD).sum(1)
    errors = length_errors(model.module, model.task, tokens, np.random.default_rng(0), sample=len(tokens))
    assert sorted(errors) == sorted(int(n) for n in np.unique(lengths))
    for n, rate in errors.items():
        alone = score_probed(model.module, model.task, tokens[lengths == n])
        assert rate == pytest.approx(1 - alone.correct / alone.n, abs=1e-12)


def test_softened_attention_changes_the_output_and_training_restores_it(tmp_path):
    model = build_probed(PAPER_CONFIGS["counting"], seed=2)
    tokens = torch.as_tensor(counting_tokens(64))
    with torch.inference_mode():
        plain = model.module(tokens)
        scales = {}
        set_attention_temperature(model.module, 5.0, scales)
        soft = model.module(tokens)
        set_attention_temperature(model.module, 1.0, scales)
        again = model.module(tokens)
    assert len(scales) == model.config.n_layers
    only_last = {}
    with torch.inference_mode():
        set_attention_temperature(model.module, 5.0, only_last, layers=[1])
        assert len(only_last) == 1
        last_soft = model.module(tokens)
        set_attention_temperature(model.module, 1.0, only_last, layers=[1])
    assert (last_soft - plain).abs().max() > 1e-3 and (last_soft - soft).abs().max() > 1e-3
    assert (soft - plain).abs().max() > 1e-3
    torch.testing.assert_close(again, plain, rtol=0, atol=0)

    cfg = ProbedTrainConfig("counting", steps=30, batch_size=32, lr=1e-3, warmup=5, eval_every=10**6,
                            attention_temperature=4.0)
    assert cfg.temperature_at(0) == 4.0 and cfg.temperature_at(21) == 1.0 and 1 < cfg.temperature_at(10) < 4
    trained, _ = train_probed(cfg, tmp_path / "ckpt.safetensors", resume=False)
    # the trained model runs at its own scale: same output as a fresh model given its weights
    fresh = build_probed(PAPER_CONFIGS["counting"], seed=9)
    fresh.bridge.load_state_dict(trained.bridge.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(trained.module(tokens), fresh.module(tokens))


def test_error_focus_is_measured_once_and_kept_for_resume(tmp_path):
    ckpt = tmp_path / "ckpt.safetensors"
    init = {k: v.clone() for k, v in load_probed("counting").bridge.state_dict().items()}
    cfg = ProbedTrainConfig("counting", steps=5, batch_size=16, lr=1e-5, warmup=1, eval_every=10**6, error_focus=0.5)
    train_probed(cfg, ckpt, resume=False, init_state=init)
    saved = dict(load_tensors(ckpt)[1]["length_errors"])
    assert len(saved) == 25 and all(0 <= v <= 1 for v in saved.values())


def test_cli_rejects_bad_softening_options():
    r = run_cli("train-probed", "counting", "--soften-layers", "2", "--steps", "1")
    assert r.returncode == 2 and "the counting model has layers 0-1, got 2" in r.stderr
    r = run_cli("train-probed", "counting", "--attention-temperature", "0.5")
    assert r.returncode == 2 and "--attention-temperature: expected a temperature from 1 to 100" in r.stderr
    assert "Traceback" not in r.stderr
