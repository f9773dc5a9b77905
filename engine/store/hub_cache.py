"""Models already in the local Hugging Face hub cache, found without the network.

The cache (HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
~/.cache/huggingface/hub) holds one `models--ORG--NAME` folder per repository, its files under
`snapshots/<revision>/` (links into `blobs/`), and `refs/main` naming the revision a plain
download resolved to. Only causal language models are listed (an architecture ending in
ForCausalLM or LMHeadModel); nothing is downloaded or written there: a decoder for a cached
model trains into a user model made from it (`train-decoder --into NAME`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "huggingface" / "hub"


@dataclass(frozen=True)
class CachedModel:
    repo_id: str  # "gpt2", "EleutherAI/pythia-70m"
    path: Path  # the snapshot folder
    revision: str
    architectures: tuple[str, ...]
    model_type: str


def _snapshot(repo: Path) -> tuple[str, Path] | None:
    """The revision `refs/main` names, else the most recently written snapshot."""
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        revision = ref.read_text(encoding="utf-8", errors="replace").strip()
        if revision and Path(revision).name == revision and (snapshots / revision).is_dir():
            return revision, snapshots / revision
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    return (found[0].name, found[0]) if found else None


def architectures(config: dict) -> tuple[str, ...]:
    """The architecture names a Hugging Face config lists; () when 'architectures' is not a list
    (a hand-edited 5 or a bare string must not break every listing that reads the config)."""
    listed = config.get("architectures")
    return tuple(a for a in listed if isinstance(a, str)) if isinstance(listed, list) else ()


def cached_models(root: Path | None = None, problems: list[str] | None = None) -> list[CachedModel]:
    """The causal LMs in the cache, by repository id; unreadable entries are skipped, each with
    its one-line reason added to `problems` when given."""
    from engine.errors import StoreError
    from engine.store.safefiles import read_json

    root = hub_cache_dir() if root is None else Path(root)
    if not root.is_dir():
        return []
    models = []
    for repo in sorted(root.glob("models--*")):
        try:
            picked = _snapshot(repo)
            if picked is None or not (picked[1] / "config.json").is_file():
                continue
            config = read_json(picked[1] / "config.json")
        except OSError:  # a snapshot folder that vanished or cannot be listed: not a model
            continue
        except StoreError as e:
            if problems is not None:
                problems.append(str(e))
            continue
        if not isinstance(config, dict):
            continue
        if not isinstance(config.get("architectures", []), list):  # damaged, not merely another kind of model
            if problems is not None:
                problems.append(f"{picked[1] / 'config.json'}: 'architectures' must be a list of names such as "
                                f"['GPT2LMHeadModel'], got {str(config['architectures'])[:40]!r}")
            continue
        archs = architectures(config)
        if not any(a.endswith(CAUSAL_SUFFIXES) for a in archs):
            continue
        repo_id = "/".join(repo.name.removeprefix("models--").split("--"))
        models.append(CachedModel(repo_id, picked[1], picked[0], archs, str(config.get("model_type", "?"))))
    return models


def find_cached(repo_id: str) -> CachedModel | None:
    return next((m for m in cached_models() if m.repo_id == repo_id), None)


def in_hub_cache(path: Path) -> bool:
    try:
        Path(path).resolve().relative_to(hub_cache_dir().resolve())
        return True
    except (ValueError, OSError):
        return False
