"""A damaged training checkpoint is one line naming it when a run resumes (#31 item 11): metadata
of the wrong shape raised AttributeError, KeyError, TypeError or a size mismatch deep in AdamW,
a step of 10^30 was believed, and a bad history failed only after the run, when CARD.md was made."""
import math

import pytest
import torch

from engine.decoder.job import checkpoint_path
from engine.decoder.train import DecoderTrainConfig, checkpoint_meta, train_decoder
from engine.errors import StoreError
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.store.folders import open_folder
from engine.store.safefiles import load_tensors, save_tensors
from tests.engine.helpers import make_model_folder, run_cli

CFG = DecoderTrainConfig(minutes=0, steps=1, batch_size=16, d_model=32, n_layers=1, n_heads=2, check_every_steps=0)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    path = tmp_path_factory.mktemp("run") / "good.safetensors"
    train_decoder(probed, CFG, path, resume=False)
    tensors, meta = load_tensors(path)
    return probed, tensors, meta


def _optim_key(tensors, suffix="exp_avg"):
    return next(k for k in tensors if k.startswith("optim.") and k.endswith(suffix))


DAMAGES = {
    "train a string": (lambda t, m: (t, {**m, "train": "x"}), "train must be the run's settings"),
    "no optimizer": (lambda t, m: (t, {k: v for k, v in m.items() if k != "optimizer"}), "lacks optimizer"),
    "no step": (lambda t, m: (t, {k: v for k, v in m.items() if k != "step"}), "lacks step"),
    "optimizer a list": (lambda t, m: (t, {**m, "optimizer": [1]}), "optimizer record"),
    "param groups without params": (lambda t, m: (t, {**m, "optimizer": {**m["optimizer"], "param_groups": [{}]}}),
                                    "optimizer record"),
    "no param groups": (lambda t, m: (t, {**m, "optimizer": {**m["optimizer"], "param_groups": []}}),
                        "different number of parameter groups"),
    "scalar key": (lambda t, m: (t, {**m, "optimizer": {**m["optimizer"], "scalars": {"x": 1}}}), "unpack"),
    "step a string": (lambda t, m: (t, {**m, "step": "abc"}), "step must be a whole number"),
    "step negative": (lambda t, m: (t, {**m, "step": -5}), "step must be a whole number"),
    "step 10^30": (lambda t, m: (t, {**m, "step": 10**30}), "step must be a whole number"),
    "seconds a string": (lambda t, m: (t, {**m, "seconds": "s"}), "seconds must be a number"),
    "seconds NaN": (lambda t, m: (t, {**m, "seconds": math.nan}), "seconds must be a number"),
    "loss a string": (lambda t, m: (t, {**m, "loss_ema": "x"}), "loss_ema must be a number"),
    "pairs a string": (lambda t, m: (t, {**m, "pairs": "x"}), "pairs must be a whole number"),
    "history an object": (lambda t, m: (t, {**m, "history": {"a": 1}}), "history must be"),
    "history rows of 2": (lambda t, m: (t, {**m, "history": [[1, 2]]}), "history must be"),
    "quality of junk": (lambda t, m: (t, {**m, "quality": [{"a": 1}]}), "quality must be"),
    "quality a string": (lambda t, m: (t, {**m, "quality": "abc"}), "quality must be"),
    "no weights": (lambda t, m: ({k: v for k, v in t.items() if not k.startswith("model.")}, m),
                   "its weights do not fit: Missing key(s)"),
    "optimizer state of another shape": (lambda t, m: ({**t, _optim_key(t): torch.zeros(3)}, m),
                                         "optimizer state exp_avg has shape (3,)"),
    "optimizer tensor name": (lambda t, m: ({**t, "optim.x.exp_avg": torch.zeros(3)}, m), "invalid literal"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_resuming_a_damaged_checkpoint_is_one_line(stopped_run, tmp_path, damage):
    probed, tensors, meta = stopped_run
    make, expected = DAMAGES[damage]
    path = tmp_path / "run.safetensors"
    save_tensors(path, *make(dict(tensors), dict(meta)))
    longer = DecoderTrainConfig(**{**CFG.__dict__, "steps": 2})
    # checkpoint_meta (the command line's look before loading) reads only the metadata: damaged
    # weights and optimizer tensors are found when the run loads them
    in_tensors = ("no weights", "optimizer state of another shape", "optimizer tensor name", "no param groups",
                  "scalar key")
    if damage not in in_tensors:
        with pytest.raises(StoreError) as caught:
            checkpoint_meta(path, longer, "m")
        _one_line(caught.value, expected, path)
    with pytest.raises(StoreError) as caught:
        train_decoder(probed, longer, path)
    _one_line(caught.value, expected, path)


def _one_line(error, expected, path):
    message = str(error)
    assert expected in message and str(path) in message and "\n" not in message, message


def test_metadata_that_is_not_an_object_is_one_line(stopped_run, tmp_path):
    from safetensors.torch import save

    _, tensors, _ = stopped_run
    path = tmp_path / "run.safetensors"
    path.write_bytes(save({k: v.contiguous() for k, v in tensors.items()}, metadata={"meta": "[1, 2]"}))
    with pytest.raises(StoreError, match="metadata is not a JSON object"):
        load_tensors(path)


def test_the_command_line_refuses_a_damaged_stopped_run_in_one_line(stopped_run, tmp_path):
    _, tensors, meta = stopped_run
    folder = make_model_folder(tmp_path / "m", "addition")
    checkpoint = checkpoint_path(open_folder(folder))
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(checkpoint, tensors, {**meta, "history": {"a": 1}})
    before = sorted(p.name for p in folder.iterdir())
    r = run_cli("train-decoder", "addition", "--model", str(folder), "--steps", "2", "--d-model", "32",
                "--layers", "1", "--heads", "2", "--batch-size", "16")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "a damaged checkpoint (history must be" in r.stderr
    assert "--fresh" in r.stderr
    assert sorted(p.name for p in folder.iterdir()) == before and not (folder / "decoder.safetensors").exists()
