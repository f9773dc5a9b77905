"""The ioi model: trained by the one training loop (stop and resume), saved as a Hugging Face GPT-2
folder the studio opens through the real-models path, and scored the same way by Hugging Face's
own forward pass and the studio's loaded bridge; the bundled one re-measured against its card."""
import json
from pathlib import Path

import pytest
import torch

from engine.errors import Cancelled
from engine.probed.ioi_eval import evaluate_ioi
from engine.probed.ioi_train import IOITrainConfig, io_scores, save_ioi_folder, train_ioi
from engine.store.folders import BUNDLED_DIR, load_probed, open_folder
from engine.tasks.ioi import IOITask
from engine.tasks.ioi_prompts import held_out_prompts, ioi_split, load_ioi

TINY = IOITrainConfig(steps=20, batch_size=16, n_layers=1, n_heads=2, d_model=32, warmup=5)


def test_training_stops_resumes_and_the_folder_opens_as_a_text_model(tmp_path):
    ckpt = tmp_path / "run.safetensors"
    asked = iter(range(1000))
    with pytest.raises(Cancelled):
        train_ioi(TINY, ckpt, resume=False, should_stop=lambda: next(asked) >= 8)
    resumed, tok, result = train_ioi(TINY, ckpt, resume=True)
    straight, _, _ = train_ioi(TINY, tmp_path / "straight.safetensors", resume=False)
    assert result.steps == 20
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)  # the same pairs and optimiser state after a stop

    folder = tmp_path / "ioi-tiny"
    save_ioi_folder(folder, resumed, tok, {"probed_training": {"steps": result.steps}})
    assert {"config.json", "model.safetensors", "tokenizer.json", "inversionview.json"} <= {
        p.name for p in folder.iterdir()}
    entry = open_folder(folder)
    assert entry.task == "text" and entry.prompts == "ioi"
    probed = load_probed(entry)
    assert isinstance(probed.task, IOITask)
    data = load_ioi()
    hf_accuracy, hf_diff = io_scores(resumed, tok, held_out_prompts(data, ioi_split(data))[:100])
    score = evaluate_ioi(probed, limit=100)  # through the studio's bridge, weights processed
    assert score.n == 100 and score.accuracy == pytest.approx(hf_accuracy, abs=0.011)
    assert score.logit_diff == pytest.approx(hf_diff, abs=1e-3)


def test_the_bundled_ioi_model_does_ioi_as_its_card_says():
    folder = BUNDLED_DIR / "ioi"
    record = json.loads((folder / "inversionview.json").read_text())
    card_accuracy = record["probed_training"]["held_out"]["io_accuracy"]
    assert card_accuracy >= 0.99
    assert sum(p.stat().st_size for p in Path(folder).iterdir()) < 10_000_000
    score = evaluate_ioi(load_probed(open_folder(folder)), limit=200)
    assert score.accuracy >= card_accuracy - 0.02 and score.logit_diff > 3
