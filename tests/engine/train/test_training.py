"""Training: losses fall within a budget of steps, checkpoints resume where they stopped, stop keeps progress."""
import numpy as np
import pytest
import torch

from engine.decoder.loss import sequence_loss
from engine.decoder.pairs import make_pairs
from engine.decoder.train import DecoderTrainConfig, train_decoder
from engine.errors import Cancelled
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.probed.sites import paper_sites
from engine.probed.train import ProbedTrainConfig, train_probed
from engine.store.safefiles import load_tensors


def held_out_loss(model, tokens) -> float:
    """Masked next-token cross-entropy on fixed held-out inputs, computed here from the logits."""
    mask = torch.as_tensor(model.task.loss_mask(tokens)[:, :-1])
    t = torch.as_tensor(tokens)
    with torch.inference_mode():
        logits = model.module(t)[:, :-1]
    return torch.nn.functional.cross_entropy(logits[mask], t[:, 1:][mask]).item()


def test_probed_training_learns_and_resumes(tmp_path):
    ckpt = tmp_path / "probed.safetensors"
    held = build_probed(PAPER_CONFIGS["addition"]).task.split(0).test[:512]
    before = held_out_loss(build_probed(PAPER_CONFIGS["addition"], seed=0), held)
    cfg = ProbedTrainConfig("addition", steps=150, batch_size=128, lr=3e-3, warmup=20, eval_every=150)
    model, result = train_probed(cfg, ckpt, resume=False)
    assert result.steps_done == 150
    assert held_out_loss(model, held) < before - 0.8  # about 2.7 at the start
    longer = ProbedTrainConfig("addition", steps=200, batch_size=128, lr=3e-3, warmup=20, eval_every=1000)
    _, resumed = train_probed(longer, ckpt, resume=True)
    assert resumed.steps_done == 200 and load_tensors(ckpt)[1]["step"] == 200


def test_probed_training_stop_keeps_the_checkpoint(tmp_path):
    ckpt = tmp_path / "p.safetensors"
    calls = iter(range(1000))
    cfg = ProbedTrainConfig("addition", steps=1000, batch_size=32, lr=1e-3, warmup=10, eval_every=10**6)
    with pytest.raises(Cancelled):
        train_probed(cfg, ckpt, resume=False, should_stop=lambda: next(calls) >= 25)
    assert load_tensors(ckpt)[1]["step"] == 25


def test_tiny_decoder_loss_falls_within_a_few_hundred_steps_and_resumes(tmp_path):
    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    sites = paper_sites(probed.config)
    rng = np.random.default_rng(123)
    held = make_pairs(probed, sites, probed.task.split(0).test[:256], rng)
    cfg = DecoderTrainConfig(minutes=0, steps=60, batch_size=64, lr=3e-3, warmup=10, d_model=32, n_layers=1,
                             n_heads=2, check_every_steps=0)
    ckpt = tmp_path / "dec.safetensors"

    torch.manual_seed(cfg.seed)
    from engine.decoder.train import new_decoder
    with torch.inference_mode():
        before = sequence_loss(new_decoder(probed, cfg, sites), held, probed.task.pad_id).item()
    decoder, result = train_decoder(probed, cfg, ckpt, resume=False)
    with torch.inference_mode():
        after = sequence_loss(decoder, held, probed.task.pad_id).item()
    assert result.steps == 60 and after < before - 0.5, (before, after, result.steps)
    assert result.sites == [s.id for s in sites]

    more = DecoderTrainConfig(**{**cfg.__dict__, "steps": 90})
    _, again = train_decoder(probed, more, ckpt, resume=True)
    assert again.steps == 90 > result.steps and again.pairs == again.steps * 64
