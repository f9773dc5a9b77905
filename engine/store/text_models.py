"""Real language models from Hugging Face folders: any causal LM TransformerLens supports.

A folder (one the user opened, or a snapshot in the local hub cache) holds Hugging Face's
`config.json`, weights (`model.safetensors`, sharded safetensors, or `pytorch_model.bin`) and
tokenizer files. Opening it reads only config.json (cheap: the model picker lists many);
loading boots it through `TransformerBridge.boot_transformers` from the local path, offline and
without `trust_remote_code`, then applies HookedTransformer's weight processing
(`enable_compatibility_mode()`: fold LayerNorm, centre writing weights, centre the unembedding,
fold value biases) so that activations and hook names follow the field's convention
(docs/design.md §7).

A parallel-attention model (GPT-NeoX / Pythia, GPT-J, ...: attention and MLP both read x{L}.pre)
is marked `parallel_attn_mlp` in its record, from config.json, and checked against the bridge
on loading: its sites have no x{L}.mid (engine/probed/sites.py).

Each refusal is one line naming the file or the architecture: a folder without weights or a
tokenizer, an architecture that needs its own code (auto_map), one TransformerLens does not
support (the message lists what it does), weights that cannot be read.
"""
from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from engine.errors import StoreError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")

# Hugging Face spells the same quantity differently by family; the first key present wins.
_KEYS = {
    "n_layers": ("n_layer", "num_hidden_layers", "num_layers", "n_layers"),
    "n_heads": ("n_head", "num_attention_heads", "num_heads", "n_heads"),
    "d_model": ("n_embd", "hidden_size", "d_model"),
    "n_ctx": ("n_positions", "max_position_embeddings", "n_ctx", "seq_length", "max_sequence_length"),
    "d_mlp": ("n_inner", "intermediate_size", "ffn_dim", "d_ff"),
    "act_fn": ("activation_function", "hidden_act", "hidden_activation", "activation"),
}


# Architectures whose blocks run attention and the MLP in parallel on x{L}.pre (no x{L}.mid)
# whatever their config says; others say it in a key (TransformerLens's adapters follow the same rules).
PARALLEL_ARCHITECTURES = ("GPTJForCausalLM", "CodeGenForCausalLM", "PhiForCausalLM", "CohereForCausalLM")


def parallel_attention(config: dict, architecture: str) -> bool:
    """Whether a Hugging Face config's blocks are parallel: x{L}.post = x{L}.pre + attn + MLP, both
    reading x{L}.pre (GPT-NeoX / Pythia, GPT-J, Phi, ...). Loading checks this against the bridge."""
    if architecture in PARALLEL_ARCHITECTURES:
        return True
    if architecture == "GPTNeoXForCausalLM":  # Hugging Face's default for NeoX is parallel
        return config.get("use_parallel_residual", True) is not False
    if architecture == "FalconForCausalLM":  # parallel_attn defaults to True; the 40B layout is parallel too
        return config.get("parallel_attn", True) is not False or bool(config.get("new_decoder_architecture"))
    return config.get("use_parallel_residual") is True  # StableLM and others that say it


def _first(config: dict, field: str):
    return next((config[k] for k in _KEYS[field] if config.get(k) is not None), None)


def architecture_of(config: dict, path: Path) -> str:
    """The one architecture a config names; StoreError for remote code or a non-causal model."""
    if config.get("auto_map"):
        raise StoreError(f"{path}: the model needs its own code (auto_map), which the studio never runs")
    from engine.store.hub_cache import architectures

    archs = list(architectures(config))  # a list of names; anything else names none
    if not archs:
        raise StoreError(f"{path}: names no architecture (expected an 'architectures' list such as "
                         f"['GPT2LMHeadModel'], got {str(config.get('architectures'))[:40]!r})")
    causal = [a for a in archs if a.endswith(CAUSAL_SUFFIXES)]
    if not causal:
        raise StoreError(f"{path}: {archs[0]} is not a causal language model (the studio reads models ending "
                         f"in {' or '.join(CAUSAL_SUFFIXES)})")
    return causal[0]


def weights_file(folder: Path) -> Path | None:
    return next((Path(folder) / f for f in WEIGHT_FILES if (Path(folder) / f).is_file()), None)


def text_record(config: dict, folder: Path) -> dict:
    """The studio's record of a text model, made from Hugging Face's config.json (nothing is
    written): architecture, sizes, and the probed section every model has."""
    from engine.tasks import TEXT_TASK
    from engine.text.hf_tokenizer import MERGES_TXT, TOKENIZER_JSON, VOCAB_JSON, tokenizer_files

    folder = Path(folder)
    path = folder / "config.json"
    arch = architecture_of(config, path)
    if weights_file(folder) is None:
        raise StoreError(f"{folder}: no weights (expected one of {', '.join(WEIGHT_FILES)})")
    if tokenizer_files(folder) is None:
        raise StoreError(f"{folder}: no tokenizer (expected {TOKENIZER_JSON}, or {VOCAB_JSON} and {MERGES_TXT}); "
                         "a task checkpoint without one is named with --task")
    sizes = config_sizes(config, path)
    act = _first(config, "act_fn")
    probed = {"task": TEXT_TASK, **sizes, "act_fn": act if isinstance(act, str) else "gelu_new"}
    if parallel_attention(config, arch):
        probed["parallel_attn_mlp"] = True
    return {"format": 1, "name": folder.name, "task": TEXT_TASK, "probed": probed,
            "huggingface": {"model_type": str(config.get("model_type", "?")), "architecture": arch}}


def config_sizes(config: dict, path: Path) -> dict:
    """n_layers, n_heads, d_model, n_ctx, d_vocab and d_mlp as a config.json gives them (under
    any family's key names, the first present wins); StoreError naming a bad one."""
    from engine.validate import whole

    sizes = {}
    try:
        for field, high in (("n_layers", 1024), ("n_heads", 1024), ("d_model", 65536), ("n_ctx", 10_000_000)):
            value = _first(config, field)
            sizes[field] = whole(value, f"{field} ({'/'.join(_KEYS[field][:2])})", 1, high)
        sizes["d_vocab"] = whole(config.get("vocab_size"), "vocab_size", 1, 10_000_000)
        d_mlp = _first(config, "d_mlp")
        sizes["d_mlp"] = 4 * sizes["d_model"] if d_mlp is None else whole(d_mlp, "d_mlp", 1, 1_000_000)
    except ValueError as e:
        raise StoreError(f"{path}: {e}") from None
    return sizes


# The sizes Hugging Face builds, by its config classes' own attribute names (a class's
# attribute_map maps its family's spelling onto them: GPT-2's n_embd is hidden_size)
_BUILT = (("d_model", "hidden_size"), ("n_layers", "num_hidden_layers"), ("n_heads", "num_attention_heads"),
          ("d_vocab", "vocab_size"))
_BUILT_MLP = ("intermediate_size", "n_inner", "ffn_dim")


def built_sizes(built) -> dict:
    """The sizes a transformers config object will build (None where it has no such attribute)."""
    sizes = {field: getattr(built, attr, None) for field, attr in _BUILT}
    for attr in _BUILT_MLP:
        if hasattr(built, attr):
            value = getattr(built, attr)
            if value is None and attr == "n_inner" and isinstance(sizes["d_model"], int):
                value = 4 * sizes["d_model"]  # GPT-2's default
            sizes["d_mlp"] = value
            break
    return sizes


def check_built_config(folder: Path) -> None:
    """StoreError unless the model Hugging Face will build has the sizes config.json gives under
    the names the studio reads. A family's config class reads only its own key names and takes
    its defaults for the rest: a GPT-NeoX config.json with GPT-2's n_embd / n_layer / n_head
    passed the studio's size checks as a 2-layer model while transformers built GPT-NeoX-20B's
    defaults (44 layers of 6144, 2.0e10 parameters). Checked before any weight is read."""
    from engine.store.hf_folders import read_hf_config
    from engine.validate import parameter_budget

    path = Path(folder) / "config.json"
    config = read_hf_config(folder)
    if config is None:
        raise StoreError(f"{path}: not a Hugging Face config (no model_type)")
    ours = config_sizes(config, path)
    try:
        from transformers import AutoConfig

        built = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as e:  # noqa: BLE001 - whatever Hugging Face's config classes raise on a hand-made file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise StoreError(f"{path}: Hugging Face cannot read this config ({first})") from None
    sizes = built_sizes(built)
    names = dict(_BUILT) | {"d_mlp": next((a for a in _BUILT_MLP if hasattr(built, a)), "d_mlp")}
    wrong = [f for f, v in sizes.items() if isinstance(v, int) and not isinstance(v, bool) and v != ours[f]]
    if not wrong:
        return
    attribute_map = getattr(built, "attribute_map", {}) or {}
    kind = str(config.get("model_type"))[:40]
    said = ", ".join(f"{next(k for k in _KEYS[f] if config.get(k) is not None) if f != 'd_vocab' else 'vocab_size'} "
                     f"{ours[f]}" for f in wrong if f in ours and (f == "d_vocab" or _first(config, f) is not None))
    builds = ", ".join(f"{attribute_map.get(names[f], names[f])} {sizes[f]:,}" for f in wrong)
    d, layers = sizes["d_model"] or ours["d_model"], sizes["n_layers"] or ours["n_layers"]
    mlp, vocab = sizes.get("d_mlp") or 4 * d, sizes["d_vocab"] or ours["d_vocab"]
    count = 2 * vocab * d + layers * (4 * d * d + 2 * d * mlp)
    try:
        parameter_budget(count, "it")
        size = f"about {count:.1e} parameters"
    except ValueError:
        size = f"about {count:.1e} parameters, above the studio's ceiling"
    raise StoreError(f"{path}: a {kind} config is read by its own key names, so Hugging Face would build "
                     f"{builds} ({size}), not the {said or 'sizes'} this file gives; name the sizes as "
                     f"{kind} configs do ({', '.join(attribute_map.get(names[f], names[f]) for f in wrong)})")


def supported_architectures() -> list[str]:
    """The causal-LM architectures TransformerLens boots (imports transformer_lens: seconds)."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    return sorted(a for a in SUPPORTED_ARCHITECTURES if a.endswith(CAUSAL_SUFFIXES))


def check_supported(architecture: str, path: Path) -> None:
    supported = supported_architectures()
    if architecture not in supported:
        raise StoreError(f"{path}: TransformerLens does not support {architecture}; it supports "
                         f"{', '.join(supported)}")


def _check_weights(folder: Path) -> None:
    """Safetensors headers parse (a damaged file is named before the bridge tries it)."""
    from safetensors import safe_open

    from engine.store.hf_folders import shard_files

    folder = Path(folder)
    files = [folder / "model.safetensors"] if (folder / "model.safetensors").is_file() else []
    index = folder / "model.safetensors.index.json"
    if not files and index.is_file():
        files = [folder / s for s in shard_files(index)]
    for file in files:
        if not file.is_file():
            raise StoreError(f"{file}: file not found (the index names it)")
        try:
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except Exception as e:  # noqa: BLE001 - any header the library refuses is damaged
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise StoreError(f"{file}: not a readable safetensors file ({first})") from None


def weights_folder(entry) -> Path:
    """Where a text model's Hugging Face files are: its own folder, or, for a user model made to
    hold a decoder for a model elsewhere (`train-decoder --into`), the folder its record names."""
    other = (entry.huggingface or {}).get("folder")
    return Path(other) if other else Path(entry.path)


TASKS_KEPT = 4  # text tasks (each with its tokenizer) kept for the next caller
_tasks: OrderedDict[tuple, object] = OrderedDict()
_tasks_lock = threading.Lock()


def _task_key(entry, folder: Path) -> tuple | None:
    """What a text task depends on: the folder's config and tokenizer files as they are now (so an
    edited file is read again), the model's sizes and the prompt distribution."""
    from engine.text.hf_tokenizer import tokenizer_files

    files = tokenizer_files(folder)
    if files is None:
        return None
    try:
        stamps = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in [folder / "config.json", *files])
    except OSError:
        return None
    return str(folder), entry.probed.d_vocab, entry.probed.n_ctx, entry.prompts, stamps


def text_task(entry):
    """The text task of a text model's entry: its tokenizer and BOS convention, read from the
    folder without torch (the app tokenizes while the model itself still loads).

    One task per folder is shared by every caller: building a 50,000-token tokenizer is one call
    into the tokenizers library that holds the GIL for about 0.1 s, and the app's window and its
    engine thread both ask for the task of the model being opened."""
    folder = weights_folder(entry)
    key = _task_key(entry, folder)
    with _tasks_lock:
        if key is not None and key in _tasks:
            _tasks.move_to_end(key)
            return _tasks[key]
        task = _read_text_task(entry, folder)
        if key is not None:
            _tasks[key] = task
            while len(_tasks) > TASKS_KEPT:
                _tasks.popitem(last=False)
        return task


def _read_text_task(entry, folder: Path):
    from engine.store.hf_folders import read_hf_config
    from engine.tasks import prompt_task_class
    from engine.text.hf_tokenizer import HFTokenizer
    from engine.text.tokenizer import TokenizerInputError

    config = read_hf_config(folder)  # read again: it may have changed since the folder was opened
    if config is None:
        raise StoreError(f"{folder / 'config.json'}: not a Hugging Face config (no model_type)")
    specials = [config.get(k) if isinstance(config.get(k), int) else None
                for k in ("bos_token_id", "eos_token_id", "pad_token_id")]
    try:
        tokenizer = HFTokenizer.from_folder(folder, entry.probed.d_vocab, specials)
    except TokenizerInputError as e:
        raise StoreError(str(e)) from None
    return prompt_task_class(entry.prompts).bound(tokenizer, entry.probed.n_ctx, *specials)


def load_text_model(entry, device=None):
    """The model booted through the bridge, weights processed, with its text task bound."""
    from engine.probed.model import ProbedModel
    from engine.runtime import TransformerBridge, pick_device

    folder = weights_folder(entry)
    if not (folder / "config.json").is_file():
        raise StoreError(f"{entry.path}: its model's files are gone ({folder}); open that folder again or "
                         "train the decoder anew")
    arch = (entry.huggingface or {}).get("architecture") or "?"
    check_supported(arch, folder / "config.json")
    check_built_config(folder)  # before any weight is read: the sizes Hugging Face will build
    _check_weights(folder)
    task = text_task(entry)
    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per file would fill the command line's output
    hf_logging.set_verbosity_error()
    try:
        wrapped = PreTrainedTokenizerFast(tokenizer_object=task.vocab.backend)
        bridge = TransformerBridge.boot_transformers(str(folder), device=pick_device(device), tokenizer=wrapped)
        bridge.enable_compatibility_mode(disable_warnings=True)
    except pickle.UnpicklingError:  # torch.load(weights_only=True) met something other than tensors
        raise StoreError(f"{weights_file(folder) or folder}: not a plain weights file (it pickles more than "
                         "tensors); nothing in it was run") from None
    except Exception as e:  # noqa: BLE001 - whatever Hugging Face's loader raises on a damaged folder
        import logging

        logging.getLogger("engine.store").info("loading %s failed", folder, exc_info=True)  # the log keeps it
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise StoreError(f"{weights_file(folder) or folder}: the model could not be loaded ({first})") from None
    bridge.eval()
    task.n_ctx = min(task.n_ctx, int(bridge.cfg.n_ctx))
    config = entry.probed
    parallel = bool(getattr(bridge.cfg, "parallel_attn_mlp", False))
    if config.parallel_attn_mlp != parallel:  # the bridge's blocks decide (a record made before it was kept)
        config = replace(config, parallel_attn_mlp=parallel)
    return ProbedModel(bridge=bridge, config=config, task=task)
