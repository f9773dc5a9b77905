"""The model store: round trips, listing, and one-line errors for bad folders and files."""
import json

import numpy as np
import pytest
import torch

from engine.errors import StoreError
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.store.folders import find_model, list_models, load_probed, save_probed, user_models_dir


def _logits(model, seed=0):
    tokens = torch.as_tensor(model.task.random_inputs(8, np.random.default_rng(seed)))
    with torch.inference_mode():
        return model.bridge(tokens)


def test_round_trip_gives_identical_outputs(tmp_path):
    model = build_probed(PAPER_CONFIGS["addition"], seed=5)
    entry = save_probed(model, tmp_path / "mine")
    assert (tmp_path / "mine" / "probed.safetensors").is_file()
    assert json.loads((tmp_path / "mine" / "inversionview.json").read_text())["probed"]["d_model"] == 32
    loaded = load_probed(entry)
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=0, atol=0)


def test_user_models_are_listed_and_found_by_name():
    model = build_probed(PAPER_CONFIGS["counting"], seed=2)
    save_probed(model, user_models_dir() / "my-counter", name="my-counter")
    entries = {e.name: e for e in list_models()}
    assert entries["my-counter"].source == "user" and entries["my-counter"].task == "counting"
    assert find_model("my-counter").path == user_models_dir() / "my-counter"
    with pytest.raises(StoreError, match="unknown model 'nope'; known models: .*my-counter"):
        find_model("nope")
    assert find_model("my-counter", task="counting").name == "my-counter"
    with pytest.raises(StoreError, match="model 'my-counter' is a counting model, not addition"):
        find_model("my-counter", task="addition")


@pytest.fixture
def saved(tmp_path):
    save_probed(build_probed(PAPER_CONFIGS["addition"], seed=3), tmp_path / "m")
    return tmp_path / "m"


def test_missing_weights_file(saved):
    (saved / "probed.safetensors").unlink()
    with pytest.raises(StoreError, match=r"probed.safetensors: file not found"):
        load_probed(find_model(str(saved)))


def test_truncated_weights_file(saved):
    path = saved / "probed.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(StoreError, match=r"probed.safetensors: not a readable safetensors file.*truncated"):
        load_probed(find_model(str(saved)))


def test_weights_that_do_not_match_the_config(saved):
    config = json.loads((saved / "inversionview.json").read_text())
    config["probed"]["d_mlp"] = 64
    (saved / "inversionview.json").write_text(json.dumps(config))
    want = r"tensor blocks.0.mlp.in.weight has shape \(128, 32\), the config implies \(64, 32\)"
    with pytest.raises(StoreError, match=want):
        load_probed(find_model(str(saved)))


def test_corrupt_or_missing_config(saved, tmp_path):
    (saved / "inversionview.json").write_text("{not json")
    with pytest.raises(StoreError, match="inversionview.json: not valid JSON"):
        find_model(str(saved))
    with pytest.raises(StoreError, match="unknown model"):
        find_model(str(tmp_path / "empty"))


def test_loading_never_unpickles(saved):
    """A pickle renamed to .safetensors is rejected, not executed."""
    import pickle

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    (saved / "probed.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(StoreError, match="not a readable safetensors file"):
        load_probed(find_model(str(saved)))
