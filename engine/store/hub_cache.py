"""Models already in the local Hugging Face hub cache, found without the network.

The cache (HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
~/.cache/huggingface/hub) holds one `models--ORG--NAME` folder per repository, its files under
`snapshots/<revision>/` (links into `blobs/`), and `refs/main` naming the revision a plain
download resolved to. Only causal language models are listed (an architecture ending in
ForCausalLM or LMHeadModel); nothing is downloaded or written there: a decoder for a cached
model trains into a user model made from it (`train-decoder --into NAME`).
"""
from __future__ import annotations

import json
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


def cached_models(root: Path | None = None) -> list[CachedModel]:
    """The causal LMs in the cache, by repository id; unreadable entries are skipped."""
    root = hub_cache_dir() if root is None else Path(root)
    if not root.is_dir():
        return []
    models = []
    for repo in sorted(root.glob("models--*")):
        try:
            picked = _snapshot(repo)
            if picked is None or not (picked[1] / "config.json").is_file():
                continue
            config = json.loads((picked[1] / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(config, dict):
            continue
        archs = tuple(a for a in config.get("architectures") or () if isinstance(a, str))
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
