"""The model store: bundled models in the repository's `models/`, user models in the user data dir.

A model folder holds `inversionview.json` (what it is), `probed.safetensors` (the probed model),
optionally `decoder.safetensors` (its InversionView decoder) and `CARD.md`. Loading reads
safetensors only; any problem is a StoreError naming the file and what was expected.

The record was once called `config.json`, the name Hugging Face gives its own config; folders
written that way still open, and the next write moves the record to its own name. A Hugging
Face GPT-2 folder of a task's model (engine/store/hf_folders.py) opens too: its weights are
Hugging Face's files, and the studio's record for it is `inversionview.json` beside them.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import StoreError
from engine.probed.model import ProbedConfig, ProbedModel, build_probed
from engine.store.safefiles import (
    atomic_write_text,
    check_shapes,
    checked_weights,
    load_tensors,
    read_json,
    save_tensors,
    tensor_shapes,
)
from engine.store.shipped import shipped_dir
from engine.store.staging import recover, rewrite_folder
from engine.tasks.text import TEXT_TASK

APP_NAME = "inversionview-studio"
CONFIG_FORMAT = 1
DEFAULT_MODEL = "counting"  # the bundled model the app and the commands open when none is named
BUNDLED_DIR = shipped_dir("models")  # the checkout's models/, or the installed copy


def user_data_dir() -> Path:
    """Where user-made models, runs and caches live (override with INVERSIONVIEW_DATA_DIR)."""
    override = os.environ.get("INVERSIONVIEW_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_data_path(APP_NAME)


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def run_path(kind: str, task: str, folder: Path) -> Path:
    """The resumable checkpoint of a `kind` ("probed" or "decoder") run training into `folder`:
    keyed by the folder's full path, so two folders of the same name never share a run."""
    folder = Path(folder).resolve()
    key = hashlib.sha1(str(folder).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return user_data_dir() / "runs" / f"{kind}-{task}-{folder.name[:60]}-{key}.safetensors"


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_new_model_name(name: str) -> None:
    """StoreError unless `name` can be a new user model: a safe folder name, not a bundled model's."""
    if not NAME_PATTERN.match(name):
        raise StoreError(f"model name {name!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', "
                         "starting with a letter or digit")
    if (BUNDLED_DIR / name).is_dir():
        raise StoreError(f"model name {name!r} belongs to a bundled model; choose another name")


@dataclass(frozen=True)
class ModelEntry:
    """One model folder as the store sees it."""

    name: str
    path: Path
    source: str  # "bundled", "user", "folder" or "hub" (the Hugging Face cache)
    task: str
    probed: ProbedConfig
    decoder: dict | None  # the decoder's config, when the folder has one
    huggingface: dict | None = None  # set when the weights are a Hugging Face checkpoint's files
    prompts: str | None = None  # a text model's prompt distribution ("ioi": engine/tasks/ioi.py), if any

    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None and (self.path / "decoder.safetensors").is_file()

    def describe(self) -> str:
        dec = "with decoder" if self.has_decoder else "no decoder"
        arch = (self.huggingface or {}).get("architecture")
        arch = f"{arch}, " if arch else ""
        return f"{self.name:<22} {self.source:<8} {self.task:<9} {arch}{self.probed.describe()}, {dec}"

    def load_task(self):
        """The task this model's inputs follow: a synthetic task, or a text model's own text task
        (its tokenizer read from the folder; no torch needed)."""
        if self.task == TEXT_TASK:
            from engine.store.text_models import text_task

            return text_task(self)
        from engine.tasks import get_task

        return get_task(self.task)


def with_prompts(entry: ModelEntry, prompts: str | None) -> ModelEntry:
    """The entry read as following a prompt distribution (`--prompts ioi`); a text model only."""
    if prompts is None:
        return entry
    if entry.task != TEXT_TASK:
        raise StoreError(f"model {entry.name!r} is a {entry.task} model; --prompts is for text models")
    from engine.tasks import prompt_task_class

    prompt_task_class(prompts)  # an unknown name: say so now
    return replace(entry, prompts=prompts)


def no_decoder_message(entry: ModelEntry) -> str:
    """What to do about a model without a decoder: the command that trains one."""
    if entry.task == TEXT_TASK:  # text decoders come with their own data sets (IOI and others)
        return (f"model {entry.name!r} has no decoder yet: InversionView needs one trained for it; "
                "its sites and flow graph work without one")
    return (f"model {entry.name!r} has no decoder; "
            f"train one with `python main.py train-decoder {entry.task} --model {entry.name}`")


STUDIO_FILE = "inversionview.json"  # the studio's record of a model folder
LEGACY_FILE = "config.json"  # its old name, which Hugging Face folders use for their own config


def _load_json(path: Path):
    return read_json(path)  # every failure (huge integers, deep nesting, surrogates) is a StoreError


def record_path(folder: Path) -> Path:
    """The file holding the folder's studio record: its own name, else the legacy config.json."""
    own = Path(folder) / STUDIO_FILE
    return own if own.is_file() or not (Path(folder) / LEGACY_FILE).is_file() else Path(folder) / LEGACY_FILE


def decoder_stamp(entry: ModelEntry) -> tuple:
    """What a loaded model's decoder was read from: the folder's decoder file and its record (which
    names the decoder's config and sites), each as (size, mtime, inode) or None when absent. The
    engine's model cache checks it, so a decoder trained into the folder meanwhile
    (`train-decoder --model FOLDER`) is loaded rather than the cached decoder-less model."""
    stamp = []
    for path in (entry.path / "decoder.safetensors", record_path(entry.path)):
        try:
            st = path.stat()
            stamp.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def read_config(folder: Path, task: str | None = None) -> dict:
    """The folder's studio record. A Hugging Face task checkpoint without one gets its record
    made from Hugging Face's config.json (nothing is written)."""
    folder = Path(folder)
    path = record_path(folder)
    if path.name == STUDIO_FILE and path.is_file():
        config = _load_json(path)
    elif path.is_file() and isinstance(legacy := _load_json(path), dict) and "probed" in legacy:
        config = legacy
    else:
        from engine.store.hf_folders import looks_like_task_checkpoint, probed_section, read_hf_config
        from engine.store.text_models import text_record
        from engine.text.hf_tokenizer import tokenizer_files

        hf = read_hf_config(folder)
        if hf is None:
            raise StoreError(f"{folder / STUDIO_FILE}: file not found (a model folder needs {STUDIO_FILE}, "
                             "or Hugging Face's config.json and weights)")
        # a folder with tokenizer files is a text model; the paper's task checkpoints have none
        if task is None and (tokenizer_files(folder) is not None or not looks_like_task_checkpoint(hf)):
            return text_record(hf, folder)
        probed = probed_section(hf, folder / LEGACY_FILE, task)
        return {"format": CONFIG_FORMAT, "name": folder.name, "task": probed["task"], "probed": probed,
                "huggingface": {"model_type": hf["model_type"]}}
    if not isinstance(config, dict) or "probed" not in config:
        raise StoreError(f"{path}: expected a JSON object with a 'probed' section")
    return config


def is_bundled(path: Path) -> bool:
    """Whether `path` is (inside) the shipped models/ folder, which commands write into only when told to."""
    try:
        Path(path).resolve().relative_to(BUNDLED_DIR.resolve())
        return True
    except ValueError:
        return False


def open_folder(folder: Path, source: str = "folder", task: str | None = None) -> ModelEntry:
    """The folder as the store sees it; `task` says which task a Hugging Face checkpoint is."""
    folder = Path(folder)
    _recover(folder)
    config = read_config(folder, task)
    try:
        probed = ProbedConfig.from_dict(config["probed"])
    except (KeyError, TypeError, ValueError) as e:
        raise StoreError(f"{record_path(folder)}: bad 'probed' section ({str(e).strip(chr(39))})") from None
    _check_sections(config, record_path(folder))
    return ModelEntry(name=config.get("name", folder.name), path=folder, source=source, task=probed.task,
                      probed=probed, decoder=config.get("decoder"), huggingface=config.get("huggingface"),
                      prompts=config.get("prompts"))


def _check_sections(config: dict, path: Path) -> None:
    """StoreError unless the record's other sections have the types every reader assumes: a
    string name, objects (or nothing) for 'decoder' and 'huggingface', a known prompt set. A
    wrong one would otherwise fail far from here, e.g. while the model list is printed."""
    from engine.tasks import PROMPTS

    name = config.get("name", "")
    if not isinstance(name, str) or not name.isprintable() or len(name) > 200:
        raise StoreError(f"{path}: 'name' must be a line of printable text, got {str(name)[:40]!r}")
    for key, inner in (("decoder", ("config", "training", "quality")), ("huggingface", ())):
        section = config.get(key)
        if section is not None and not isinstance(section, dict):
            raise StoreError(f"{path}: '{key}' must be an object, got {type(section).__name__}")
        for part in inner:  # sections within it, read with .get() by the cards and the commands
            if section and section.get(part) is not None and not isinstance(section[part], dict):
                raise StoreError(f"{path}: '{key}.{part}' must be an object, got {type(section[part]).__name__}")
    for key in ("architecture", "model_type", "folder"):
        value = (config.get("huggingface") or {}).get(key)
        if value is not None and not (isinstance(value, str) and value.isprintable()):
            raise StoreError(f"{path}: 'huggingface.{key}' must be printable text, got {str(value)[:40]!r}")
    if config.get("prompts") is not None and config["prompts"] not in PROMPTS:
        raise StoreError(f"{path}: 'prompts' must be one of {', '.join(PROMPTS)}, got {str(config['prompts'])[:40]!r}")


def open_cached(cached, task: str | None = None) -> ModelEntry:
    """A Hugging Face cache entry (hub_cache.CachedModel) opened, and named by its repository id."""
    return replace(open_folder(cached.path, "hub", task=task), name=cached.repo_id)


def cached_entries() -> list[ModelEntry]:
    """The models in the Hugging Face cache that open today (task checkpoints), named by their id."""
    from engine.store.hub_cache import cached_models

    entries = []
    for cached in cached_models():
        try:
            entries.append(open_cached(cached))
        except StoreError:
            continue
    return entries


def list_models(include_cache: bool = False, problems: list[str] | None = None) -> list[ModelEntry]:
    """Bundled models first, then the user's (and with include_cache, the Hugging Face cache's
    that open); folders that cannot be read are skipped, each with its one-line reason added to
    `problems` when given (one broken folder never hides the others)."""
    entries = []
    for root, source in ((BUNDLED_DIR, "bundled"), (user_models_dir(), "user")):
        if not root.is_dir():
            continue
        for left in root.glob(".*.previous"):  # a rewrite cut between its two renames
            _recover(root / left.name[1:-len(".previous")])
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                entries.append(open_folder(folder, source))
            except StoreError as e:
                if problems is not None:
                    problems.append(str(e))
    return entries + (cached_entries() if include_cache else [])


def find_model(name_or_path: str, task: str | None = None) -> ModelEntry:
    """A model by name (bundled first, then user) or by folder path; of `task` when given."""
    entry = next((e for e in list_models() if e.name == name_or_path), None)
    path = Path(name_or_path)
    try:
        folder = entry is None and path.is_dir() and any((path / f).is_file() for f in (STUDIO_FILE, LEGACY_FILE))
    except OSError:  # e.g. a name longer than the file system allows: no such folder
        folder = False
    if folder:
        entry = open_folder(path, task=task)
    if entry is None:
        from engine.store.hub_cache import find_cached

        cached = find_cached(name_or_path)
        if cached is not None:  # a Hugging Face cache id such as "gpt2" or "org/name"
            entry = open_cached(cached, task)
    if entry is None:
        known = ", ".join(e.name for e in list_models()) or "none"
        raise StoreError(f"unknown model {name_or_path!r}; known models: {known} (or give a model folder path, "
                         "or the id of a model in the Hugging Face cache)")
    if task is not None and entry.task != task:
        raise StoreError(f"model {entry.name!r} is a {entry.task} model, not {task}")
    return entry


def load_probed(entry: ModelEntry | str, device: str | None = None) -> ProbedModel:
    """The model under study, ready to run: its TransformerLens bridge (`.bridge`), its config
    (`.config`: n_layers, n_heads, d_model, d_vocab, ...) and its task (`.task`). entry: a
    ModelEntry or a name, folder or cache id (find_model); device: "cpu", "cuda", ... (default:
    the best available). StoreError when the folder or its weights cannot be read."""
    if isinstance(entry, str):
        entry = find_model(entry)
    if entry.task == TEXT_TASK:
        from engine.store.text_models import load_text_model

        return load_text_model(entry, device)
    if entry.huggingface:
        from engine.store.hf_folders import gpt2_to_probed, read_hf_tensors

        path = entry.path
        tensors = gpt2_to_probed(read_hf_tensors(path), entry.probed.n_layers)
        model = build_probed(entry.probed, device=device)
    else:
        path = entry.path / "probed.safetensors"
        shapes = tensor_shapes(path)  # the header only: a damaged file is named before a model is built
        model = build_probed(entry.probed, device=device)
        # an extra or oversized tensor is refused before any tensor is read
        check_shapes(path, {k: tuple(v.shape) for k, v in model.bridge.state_dict().items()}, shapes)
        tensors, _ = load_tensors(path)
    tensors = checked_weights(path, tensors)
    check_state(path, model.bridge.state_dict(), tensors)
    model.bridge.load_state_dict(tensors)
    model.bridge.eval()
    return model


def check_state(path: Path, expected: dict, found: dict) -> None:
    """StoreError when a weights file lacks tensors, has extra ones, or shapes differ."""
    check_shapes(path, {k: tuple(v.shape) for k, v in expected.items()},
                 {k: tuple(v.shape) for k, v in found.items()})


def save_probed(model: ProbedModel, folder: Path, name: str | None = None, extra: dict | None = None) -> ModelEntry:
    """Write probed.safetensors and config.json (keeping any decoder section already there), as one unit."""
    folder = Path(folder)
    with rewrite_folder(folder) as staging:
        save_tensors(staging / "probed.safetensors", model.bridge.state_dict())
        config = read_config(staging) if record_path(staging).is_file() else {}
        config.update({"format": CONFIG_FORMAT, "name": name or config.get("name") or folder.name,
                       "task": model.config.task, "probed": model.config.to_dict()})
        config.update(extra or {})
        write_config(staging, config)
    return open_folder(folder)


@contextmanager
def rewrite_model(entry: ModelEntry) -> Iterator[Path]:
    """Change a model folder as one unit (staging.rewrite_folder): yields a staging copy that holds
    the folder's record, made from the folder itself on a first write (a Hugging Face checkpoint,
    a legacy config.json), so it is named after the folder, not after the copy; CARD.md is
    refreshed from the new record before the copy is swapped in."""
    from engine.store.cards import probed_card

    with rewrite_folder(entry.path) as staging:
        if not (staging / STUDIO_FILE).is_file():
            write_config(staging, read_config(entry.path))
        yield staging
        try:
            probed_card(replace(open_folder(staging, entry.source), name=entry.name))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:  # a hand-edited record
            first = (str(e).splitlines() or [type(e).__name__])[0][:120]
            raise StoreError(f"{record_path(entry.path)}: CARD.md cannot be made from it (a training record of the "
                             f"wrong shape: {type(e).__name__} {first}); nothing was changed") from None


def _recover(folder: Path) -> None:
    try:
        recover(folder)
    except OSError:  # a read-only install: nothing to put back there
        pass


def write_config(folder: Path, config: dict) -> None:
    """Write the studio record under its own name; a legacy config.json that held it goes (a
    Hugging Face config.json, which never has a 'probed' section, stays)."""
    folder = Path(folder)
    atomic_write_text(folder / STUDIO_FILE, json.dumps(config, indent=2) + "\n")
    legacy = folder / LEGACY_FILE
    if legacy.is_file():
        try:
            ours = "probed" in _load_json(legacy)
        except (StoreError, TypeError):
            ours = False
        if ours:
            legacy.unlink()
