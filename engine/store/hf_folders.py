"""Hugging Face GPT-2 folders of a task's model: the InversionView paper's own checkpoints.

The paper published its probed models as Hugging Face Trainer folders for `GPT2LMHeadModel`:
`config.json` (Hugging Face's) with the task's vocabulary size and special ids (counting: 40
tokens, BOS/EOS/PAD 37/38/39; addition: 15 tokens, 10/13/14) and `pytorch_model.bin`, with no
tokenizer files. The token ids are exactly our tasks', so such a folder opens as that task. Its
weights are read without running code (`torch.load(weights_only=True)`, or safetensors, sharded
too) and laid out as our probed model's; the studio's own record for the folder (a decoder
trained for it) goes in `inversionview.json` beside Hugging Face's files, never into them.

Real text models (a tokenizer beside the weights, any architecture TransformerLens boots) open
through engine/store/text_models.py instead.
"""
from __future__ import annotations

from pathlib import Path

from engine.errors import StoreError

HF_CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLED = "pytorch_model.bin"


def read_hf_config(folder: Path) -> dict | None:
    """Hugging Face's config.json of `folder` when it is one (it names a model_type), else None."""
    from engine.store.safefiles import read_json

    path = Path(folder) / HF_CONFIG
    if not path.is_file():
        return None
    config = read_json(path)
    if not isinstance(config, dict) or "model_type" not in config:
        return None
    check_loadable(config, path)
    return config


# Keys that are true or false in every Hugging Face config that has them: a "no" or a 1 there is
# a hand edit that Hugging Face's code would read as true (or fail on, deep inside loading).
FLAG_KEYS = ("use_parallel_residual", "parallel_attn", "new_decoder_architecture", "tie_word_embeddings",
             "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention", "use_cache")
SPECIAL_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


def check_loadable(config: dict, path: Path) -> None:
    """StoreError for what no studio reader can use, found in the config before any weights are
    read: quantized weights, a non-boolean flag, special token ids outside the vocabulary."""
    quant = config.get("quantization_config")
    if quant is not None:
        method = quant.get("quant_method") if isinstance(quant, dict) else None
        method = method if isinstance(method, str) and method.isprintable() else "quantization_config"
        raise StoreError(f"{path}: the weights are quantized ({method[:40]}); the studio reads unquantized "
                         "float weights only")
    for key in FLAG_KEYS:
        if config.get(key) is not None and not isinstance(config[key], bool):
            raise StoreError(f"{path}: {key} must be true or false, got {str(config[key])[:40]!r}")
    vocab = config.get("vocab_size")
    for key in SPECIAL_IDS:
        value = config.get(key)
        ids = value if isinstance(value, list) else [value]  # Llama 3 lists several EOS ids
        for token in ids:
            if token is None:
                continue
            # -1 is Hugging Face's "none" (the text task reads it so); one past the vocabulary
            # would index outside the embedding
            if isinstance(token, bool) or not isinstance(token, int) or token < -1 or (
                    isinstance(vocab, int) and token >= vocab):
                size = f" (the vocabulary has {vocab:,} tokens)" if isinstance(vocab, int) else ""
                raise StoreError(f"{path}: {key} must be a token id{size}, got {str(token)[:40]!r}")


def shard_files(index: Path) -> list[str]:
    """The shard file names a safetensors index lists (each a file in the index's folder)."""
    from engine.store.safefiles import read_json

    weight_map = read_json(index)
    weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise StoreError(f"{index}: not a safetensors index (expected a 'weight_map' of shard files)")
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        if not shard or Path(shard).name != shard:
            raise StoreError(f"{index}: shard {shard[:60]!r} is not a file in this folder")
    return shards


def _int(config: dict, key: str, path: Path, low: int = 1, high: int = 1_000_000) -> int:
    from engine.validate import whole

    try:
        return whole(config.get(key), repr(key), low, high)
    except ValueError as e:
        raise StoreError(f"{path}: {e}") from None


def task_of(config: dict, path: Path, task: str | None = None) -> str:
    """The task whose vocabulary this GPT-2 config has (given `task`, checked against it)."""
    from engine.tasks import TASKS

    vocab = _int(config, "vocab_size", path)
    specials = tuple(config.get(k) for k in ("bos_token_id", "eos_token_id", "pad_token_id"))

    def fits(t) -> bool:
        return t.vocab.vocab_size == vocab

    if task is not None:
        if not fits(TASKS[task]):
            raise StoreError(f"{path}: vocabulary of {vocab} tokens, but the {task} task has "
                             f"{TASKS[task].vocab.vocab_size}")
        return task
    found = [name for name, t in TASKS.items() if fits(t) and specials == (t.bos_id, t.eos_id, t.pad_id)]
    if len(found) != 1:
        sizes = ", ".join(f"{name}: {t.vocab.vocab_size} tokens, BOS/EOS/PAD {t.bos_id}/{t.eos_id}/{t.pad_id}"
                          for name, t in TASKS.items())
        raise StoreError(f"{path}: a {config.get('model_type')} model with {vocab} tokens and BOS/EOS/PAD "
                         f"{'/'.join(map(str, specials))} matches no task ({sizes}); give --task, or add the "
                         "model's tokenizer files to open it as a text model")
    return found[0]


def looks_like_task_checkpoint(config: dict) -> bool:
    """A GPT-2 config whose vocabulary is a task's size (the paper's checkpoints have no tokenizer)."""
    from engine.tasks import TASKS

    vocab = config.get("vocab_size")  # any JSON value: a list here must not raise (unhashable)
    return config.get("model_type") == "gpt2" and isinstance(vocab, int) and vocab in {
        t.vocab.vocab_size for t in TASKS.values()}


def probed_section(config: dict, path: Path, task: str | None = None) -> dict:
    """The probed-model architecture (ProbedConfig fields) of a GPT-2 task checkpoint."""
    if config.get("auto_map") or config.get("model_type") != "gpt2":
        what = "needs its own code (auto_map), which the studio never runs" if config.get("auto_map") else \
            f"is a {config.get('model_type')!r} model; task checkpoints are GPT-2 (model_type 'gpt2')"
        raise StoreError(f"{path}: {what}")
    from engine.probed.config import ACTIVATION_NAMES

    act = config.get("activation_function", "gelu_new")
    if act not in ACTIVATION_NAMES:
        raise StoreError(f"{path}: activation_function {act!r} is not supported; "
                         f"use one of {', '.join(ACTIVATION_NAMES)}")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"):
        if config.get(flag):
            raise StoreError(f"{path}: {flag} is set; the studio reads plain GPT-2 attention only")
    d_model, n_heads = _int(config, "n_embd", path, high=16384), _int(config, "n_head", path, high=256)
    if d_model % n_heads:
        raise StoreError(f"{path}: n_embd {d_model} is not a multiple of n_head {n_heads}")
    n_inner = config.get("n_inner")
    d_mlp = 4 * d_model if n_inner is None else _int(config, "n_inner", path, high=65536)
    return {"task": task_of(config, path, task), "n_layers": _int(config, "n_layer", path, high=256),
            "n_heads": n_heads, "d_model": d_model, "d_mlp": d_mlp,
            "n_ctx": _int(config, "n_positions", path, high=1_000_000),
            "d_vocab": _int(config, "vocab_size", path), "act_fn": act}


def read_hf_tensors(folder: Path) -> dict:
    """The folder's weights by Hugging Face name: safetensors (one file or shards) first, else
    pytorch_model.bin read with weights_only=True, so a pickle can never run code."""
    import torch

    from engine.store.safefiles import load_tensors

    folder = Path(folder)
    if (folder / SAFETENSORS).is_file():
        return load_tensors(folder / SAFETENSORS)[0]
    index = folder / SAFETENSORS_INDEX
    if index.is_file():
        tensors: dict = {}
        for shard in shard_files(index):
            tensors.update(load_tensors(folder / shard)[0])
        return tensors
    path = folder / PICKLED
    if not path.is_file():
        raise StoreError(f"{folder}: no weights (expected {SAFETENSORS}, {SAFETENSORS_INDEX} or {PICKLED})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable or unsafe file is one message
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise StoreError(f"{path}: not a plain weights file ({first}); nothing in it was run") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StoreError(f"{path}: expected a dictionary of tensors")
    return state


def gpt2_to_probed(hf: dict, n_layers: int) -> dict:
    """Hugging Face GPT-2 weights renamed and laid out as our probed model's state dict.

    GPT-2 stores its projections as Conv1D, (in, out); ours are torch Linear, (out, in). The
    query, key and value projections are one (d, 3d) product there and three here."""
    import torch

    def get(name: str) -> torch.Tensor:
        for key in (name, f"transformer.{name}"):
            if key in hf:
                return hf[key]
        raise StoreError(f"the weights lack {name} (is this a GPT2LMHeadModel checkpoint?)")

    out = {"embed.weight": get("wte.weight"), "pos_embed.weight": get("wpe.weight")}
    for L in range(n_layers):
        p, q = f"h.{L}.", f"blocks.{L}."
        w_q, w_k, w_v = get(p + "attn.c_attn.weight").T.chunk(3, dim=0)  # each (d, d): (out, in)
        b_q, b_k, b_v = get(p + "attn.c_attn.bias").chunk(3)
        out.update({
            q + "ln1.weight": get(p + "ln_1.weight"), q + "ln1.bias": get(p + "ln_1.bias"),
            q + "attn.q.weight": w_q, q + "attn.q.bias": b_q, q + "attn.k.weight": w_k, q + "attn.k.bias": b_k,
            q + "attn.v.weight": w_v, q + "attn.v.bias": b_v,
            q + "attn.o.weight": get(p + "attn.c_proj.weight").T, q + "attn.o.bias": get(p + "attn.c_proj.bias"),
            q + "ln2.weight": get(p + "ln_2.weight"), q + "ln2.bias": get(p + "ln_2.bias"),
            q + "mlp.in.weight": get(p + "mlp.c_fc.weight").T, q + "mlp.in.bias": get(p + "mlp.c_fc.bias"),
            q + "mlp.out.weight": get(p + "mlp.c_proj.weight").T, q + "mlp.out.bias": get(p + "mlp.c_proj.bias"),
        })
    out["ln_final.weight"], out["ln_final.bias"] = get("ln_f.weight"), get("ln_f.bias")
    unembed = hf.get("lm_head.weight", get("wte.weight"))  # GPT-2 ties the unembedding to the embedding
    out["unembed.weight"] = unembed
    out["unembed.bias"] = torch.zeros(unembed.shape[0])  # GPT-2's output has no bias
    return {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}
