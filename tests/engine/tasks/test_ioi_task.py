"""IOI prompts on a text model: the positions S1, IO, S2 and END found through the model's own
tokenizer, facts from a sample's own tokens, and a decoder trained from the generator (no corpus)."""
import numpy as np
import pytest
import torch

from engine.decoder.config import DecoderTrainConfig
from engine.decoder.inputs import decoder_length, inputs_for
from engine.decoder.loss import sequence_loss
from engine.decoder.pairs import make_pairs
from engine.decoder.train import new_decoder, train_decoder
from engine.probed.ioi_train import train_tokenizer
from engine.probed.sites import chosen_sites
from engine.store.folders import load_probed, open_folder, with_prompts
from engine.tasks.base import TaskInputError
from engine.tasks.ioi import IOITask
from engine.tasks.ioi_prompts import parse, sample_prompts
from tests.engine.helpers import make_text_folder


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    folder = make_text_folder(tmp_path_factory.mktemp("ioi") / "tiny-ioi", n_layers=2, n_heads=2, d_model=32,
                              tok=train_tokenizer())  # the ioi model's: every name one token
    return load_probed(with_prompts(open_folder(folder), "ioi"))


def test_positions_are_found_through_the_tokenizer(probed):
    task = probed.task
    assert isinstance(task, IOITask) and task.has_generator
    for p in sample_prompts(task.data, 40, np.random.default_rng(2)):
        ids = task.parse_query(p.text)
        at = task.ioi_positions(ids)
        pieces = task.vocab.token_strings(ids)
        assert pieces[at["S1"]] == pieces[at["S2"]] == "␣" + p.s and pieces[at["IO"]] == "␣" + p.io
        assert at["END"] == len(ids) - 2 and pieces[at["END"]] == "␣to" and pieces[-1] == "␣" + p.io
        assert (at["IO"] < at["S1"]) == (p.order == "ABBA")
        assert task.resolve_position(ids, "END") == at["END"]
        labels = task.position_labels(ids)
        assert [labels[at[k]] for k in ("S1", "IO", "S2", "END")] == ["S1", "IO", "S2", "END"]
        assert labels[-1] == "␣" + p.io and labels.count("END") == 1  # the rest stay their tokens
        assert task.fact(ids) == f"IO {p.io}, S {p.s}"
    with pytest.raises(TaskInputError, match="not an IOI prompt"):
        task.parse_query("When Mary and John went to the store, Mary gave a drink to Mary")


def test_a_decoder_trains_from_the_prompts_and_its_samples_carry_their_own_facts(probed, tmp_path):
    task = probed.task
    inputs = inputs_for(task, None, decoder_length(task, 32))
    assert inputs.source == {"kind": "task", "prompts": "ioi"} and inputs.train.shape[1] == 32
    held = [parse(task.data, task.query_text(r)) for r in inputs.test[:200]]
    assert all(p is not None for p in held)
    assert all(p.template in task.held_out.test_templates or p.io in task.held_out.held_out_io(p.order)
               for p in held)  # the held-out rows hold something out
    cfg = DecoderTrainConfig(minutes=0, steps=30, batch_size=32, d_model=32, n_layers=1, n_heads=2, lr=3e-3,
                             warmup=5, length=32, check_every_steps=0)
    sites = chosen_sites(probed.config, None)
    pairs = make_pairs(probed, sites, inputs.test[:64], np.random.default_rng(4))  # held-out prompts
    with torch.inference_mode():
        before = sequence_loss(new_decoder(probed, cfg, sites), pairs, task.decoder_pad_id).item()
    decoder, result = train_decoder(probed, cfg, tmp_path / "run.safetensors", resume=False, inputs=inputs)
    with torch.inference_mode():
        after = sequence_loss(decoder, pairs, task.decoder_pad_id).item()
    assert result.steps == 30 and after < before - 1.0  # ln(775) = 6.7 at the start
