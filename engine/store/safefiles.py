"""Safetensors files written atomically and read with one-line errors; never a pickle.

Training checkpoints keep the optimizer's state here too (flattened to named tensors), with the
step count and other small facts as JSON in the file's metadata.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from engine.errors import StoreError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that a reader sees the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_tensors(path: Path, tensors: dict, meta: dict | None = None) -> None:
    from safetensors.torch import save

    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    metadata = {"meta": json.dumps(meta or {})}
    atomic_write_bytes(Path(path), save(contiguous, metadata=metadata))


def load_tensors(path: Path, device="cpu") -> tuple[dict, dict]:
    """(tensors, meta) from a safetensors file; StoreError naming the file when it is unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: file not found (expected a .safetensors weights file)")
    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = json.loads((f.metadata() or {}).get("meta", "{}"))
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        return tensors, meta
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StoreError(f"{path}: not a readable safetensors file ({first}); it may be truncated") from None


def optimizer_tensors(optimizer) -> tuple[dict, dict]:
    """Flatten a torch optimizer's state to (named tensors, JSON-able rest)."""
    import torch

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = value
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer, tensors: dict, info: dict) -> None:
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in info.get("scalars", {}).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
