"""A decoder training job from start to finish, shared by `train-decoder` and the app's dialog:
where it trains (a model folder, or a new user model made from another's probed weights), where
its checkpoint lives, and what is written at the end (weights, config section, model card)."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from engine.decoder.files import load_decoder, save_decoder
from engine.decoder.model import ConditionalDecoder
from engine.decoder.train import SIZE_FIELDS, DecoderTrainConfig, DecoderTrainResult
from engine.errors import StoreError
from engine.probed.model import ProbedModel
from engine.probed.sites import chosen_sites
from engine.store.cards import hardware_summary
from engine.store.folders import (
    ModelEntry,
    check_new_model_name,
    open_folder,
    read_config,
    rewrite_model,
    run_path,
    user_models_dir,
    write_config,
)
from engine.store.safefiles import atomic_write_bytes
from engine.store.staging import rewrite_folder
from engine.tasks.text import TEXT_TASK


def checkpoint_path(entry: ModelEntry) -> Path:
    """The resumable checkpoint of a decoder being trained into `entry`'s folder: keyed by the
    folder's full path, so two models with the same folder name never share a run."""
    return run_path("decoder", entry.task, entry.path)


def probed_file_bytes(base: ModelEntry) -> bytes:
    """What `base`'s probed.safetensors holds, or would hold for a Hugging Face checkpoint (its
    weights in our layout), so a user model made from either is an ordinary model folder."""
    if not base.huggingface:
        return (base.path / "probed.safetensors").read_bytes()
    from safetensors.torch import save

    from engine.store.folders import load_probed

    state = {k: v.detach().cpu().contiguous() for k, v in load_probed(base).bridge.state_dict().items()}
    return save(state, metadata={"meta": json.dumps({"converted_from": "huggingface"})})


def new_user_model(base: ModelEntry, name: str) -> ModelEntry:
    """A user model folder holding a copy of `base`'s probed model (no decoder yet) to train into.

    Reuses the folder when it holds the same probed weights and a run to resume; refuses one
    whose decoder is finished (training again would overwrite it)."""
    check_new_model_name(name)
    folder = user_models_dir() / name
    if base.task == TEXT_TASK:
        return _text_user_model(base, name, folder)
    weights = probed_file_bytes(base)
    if folder.exists():
        mine = folder / "probed.safetensors"
        if not (mine.is_file() and mine.read_bytes() == weights):
            raise StoreError(f"a model named {name!r} already exists ({folder}) with other probed weights; "
                             "choose another name")
        entry = open_folder(folder, "user")
        if entry.has_decoder and not checkpoint_path(entry).is_file():
            raise StoreError(f"model {name!r} already has a trained decoder; choose another name")
        return entry
    with rewrite_folder(folder) as staging:
        atomic_write_bytes(staging / "probed.safetensors", weights)
        config = {k: v for k, v in read_config(base.path).items() if k not in ("decoder", "name", "huggingface")}
        config["name"] = name
        config["based_on"] = base.name
        write_config(staging, config)
    return open_folder(folder, "user")


def _text_user_model(base: ModelEntry, name: str, folder: Path) -> ModelEntry:
    """A user model for a text model's decoder: a record that names the Hugging Face folder the
    weights stay in (a GPT-2 small copy would be 0.5 GB; the hub cache is Hugging Face's)."""
    from engine.store.text_models import weights_folder

    source = str(weights_folder(base).resolve())
    if folder.exists():
        entry = open_folder(folder, "user")
        if (entry.huggingface or {}).get("folder") != source:
            raise StoreError(f"a model named {name!r} already exists ({folder}) for another model; choose another name")
        if entry.has_decoder and not checkpoint_path(entry).is_file():
            raise StoreError(f"model {name!r} already has a trained decoder; choose another name")
        return entry
    with rewrite_folder(folder) as staging:
        config = {k: v for k, v in read_config(base.path).items() if k not in ("decoder", "name")}
        config["huggingface"] = {**config.get("huggingface", {}), "folder": source}
        config["name"], config["based_on"] = name, base.name
        write_config(staging, config)
    return open_folder(folder, "user")


def starting_state(source: ModelEntry, probed: ProbedModel, cfg: DecoderTrainConfig) -> dict:
    """The weights of `source`'s decoder, to start a run from (`--init-from`); StoreError unless
    it was trained on the same sites at the size cfg asks for."""
    decoder, sites = load_decoder(source, probed)
    if [s.id for s in sites] != [s.id for s in chosen_sites(probed.config, cfg.sites, probed.task)]:
        raise StoreError(f"{source.name!r}'s decoder was trained on other sites; start from random weights instead")
    if any(getattr(decoder.cfg, key) != getattr(cfg, key) for key, _ in SIZE_FIELDS):
        raise StoreError(f"{source.name!r}'s decoder is {decoder.cfg.describe()}: choose that size to start from it")
    return decoder.state_dict()


def finish(entry: ModelEntry, decoder: ConditionalDecoder, result: DecoderTrainResult, cfg: DecoderTrainConfig,
           command: str, device: str, init_from: str | None = None, inputs: dict | None = None) -> ModelEntry:
    """Write the trained decoder and its training record into the folder; refresh CARD.md.
    inputs: where its training inputs came from (DecoderInputs.source), so eval-decoder finds
    the same held-out part."""
    training = {"command": command, "schedule": asdict(cfg), "steps": result.steps, "pairs": result.pairs,
                "seconds": result.seconds, "hardware": hardware_summary(device),
                "history": result.history, "quality": [asdict(q) for q in result.quality],
                "inputs": inputs or {"kind": "task"}}
    if init_from:
        training["init_from"] = init_from
    notes = (read_config(entry.path).get("decoder") or {}).get("training", {}).get("notes")
    if notes:
        training["notes"] = notes
    with rewrite_model(entry) as staging:  # weights, record and card land together or not at all
        save_decoder(staging, decoder, result.sites, training)
        if (inputs or {}).get("prompts"):  # the model now reads its prompts without --prompts
            config = read_config(staging)
            config["prompts"] = inputs["prompts"]
            write_config(staging, config)
    return open_folder(entry.path, entry.source)
