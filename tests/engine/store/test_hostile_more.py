"""More hostile Hugging Face folders (#31 item 11): a config.json whose sizes are spelt with
another family's key names passed the studio's size checks while transformers built its own
defaults (a GPT-NeoX config with GPT-2's n_embd / n_layer / n_head: GPT-NeoX-20B, 2.0e10
parameters). The sizes of the config transformers will build are checked first."""
import json

import pytest

from engine.errors import StoreError
from engine.store.text_models import check_built_config
from tests.engine.helpers import make_text_folder, run_cli

GPT2_NAMES = {"hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
              "intermediate_size": "n_inner", "max_position_embeddings": "n_positions"}


@pytest.fixture(scope="module")
def neox_with_gpt2_names(tmp_path_factory):
    folder = make_text_folder(tmp_path_factory.mktemp("hostile") / "neox", family="neox")
    config = json.loads((folder / "config.json").read_text())
    for theirs, gpt2 in GPT2_NAMES.items():
        config[gpt2] = config.pop(theirs)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_sizes_under_another_familys_names_are_refused_before_loading(neox_with_gpt2_names, monkeypatch):
    import engine.store.text_models as text_models

    def no_weights(folder):
        raise AssertionError("weights were read")

    monkeypatch.setattr(text_models, "_check_weights", no_weights)
    with pytest.raises(StoreError) as caught:
        check_built_config(neox_with_gpt2_names)
    message = str(caught.value)
    assert str(neox_with_gpt2_names / "config.json") in message and "\n" not in message
    assert "hidden_size 6,144, num_hidden_layers 44" in message and "about 2.0e+10 parameters" in message
    assert "not the n_embd 64, n_layer 2, n_head 4, n_inner 256 this file gives" in message

    from engine.store.folders import find_model, load_probed

    with pytest.raises(StoreError, match="Hugging Face would build hidden_size 6,144"):
        load_probed(find_model(str(neox_with_gpt2_names)))


@pytest.mark.parametrize("family", ["gpt2", "neox", "llama"])
def test_configs_in_their_own_names_pass(tmp_path, family):
    check_built_config(make_text_folder(tmp_path / family, family=family))


def test_a_gpt2_config_that_hugging_face_cannot_read_is_one_line(tmp_path):
    folder = make_text_folder(tmp_path / "gpt2")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "no-such-family"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(StoreError) as caught:
        check_built_config(folder)
    assert "Hugging Face cannot read this config" in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_line_says_so_in_one_line(neox_with_gpt2_names, tmp_path):
    out = tmp_path / "rows.csv"
    r = run_cli("query", "--model", str(neox_with_gpt2_names), "--text", "the quick brown", "--site", "x0.post",
                "--position", "1", "--csv", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Hugging Face would build hidden_size 6,144" in r.stderr
    assert not out.exists()
