"""Safetensors files written atomically and read with one-line errors; never a pickle.

Training checkpoints keep the optimizer's state here too (flattened to named tensors), with the
step count and other small facts as JSON in the file's metadata.
"""
from __future__ import annotations

import glob
import json
import os
import re
import secrets
import stat
import time
from pathlib import Path

from engine.errors import OutputError, StoreError

# The process's umask, read once at import (reading it means setting it, which is not thread-safe later).
_UMASK = os.umask(0)
os.umask(_UMASK)
STALE_TEMP_S = 600  # a temp file this old beside its target was left by a killed writer


def writable_target(path: Path) -> Path:
    """The file a write to `path` replaces: `path` itself, as given. A symlink there is replaced,
    never followed: a link planted in a shared folder (/tmp) must not turn an export into a
    write onto whatever file it names. OutputError when something other than a regular file or
    a link (a folder, a device, a pipe) is there, so a write never replaces it."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    except (OSError, ValueError) as e:  # a name too long for the file system; a NUL in it
        reason = "a path cannot hold a NUL character" if isinstance(e, ValueError) else (e.strerror or e)
        raise OutputError(f"cannot write {printable_path(path)}: {reason}") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise OutputError(f"cannot write {path}: it is not a regular file (a folder, device or pipe); "
                          "give the path of a file")
    return path


def printable_path(path: Path) -> str:
    return repr(str(path)[:300])[1:-1]  # a NUL or a newline shown escaped, so the message stays one line


# A writer's temp file: `.NAME.ivs-<16 hex digits>.tmp` beside its target. The marker and the exact
# shape are what let a later write remove a killed writer's leftover and nothing else: a user's own
# `.results.csv.backup.tmp` never matches.
TEMP_MARK = "ivs-"


def _temp_pattern(path: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(path.name[:200])}\.{TEMP_MARK}[0-9a-f]{{16}}\.tmp")


def _remove_stale_temps(path: Path) -> None:
    ours = _temp_pattern(path)
    for old in path.parent.glob(f".{glob.escape(path.name[:200])}.{TEMP_MARK}*.tmp"):
        try:
            st = os.lstat(old)
            if (ours.fullmatch(old.name) and stat.S_ISREG(st.st_mode)
                    and time.time() - st.st_mtime > STALE_TEMP_S):
                old.unlink()
        except OSError:
            continue


def _new_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside `path`, made by this process (O_EXCL), named as _temp_pattern matches."""
    while True:
        tmp = path.with_name(f".{path.name[:200]}.{TEMP_MARK}{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600), str(tmp)
        except FileExistsError:  # 2^64 names: a clash is a planted file; draw again
            continue


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that a reader sees the old or the new content, never half of it.

    Only a regular file, a symlink (replaced, not followed) or nothing is replaced; a regular
    file's permissions are kept (a new file gets the usual 0666 less the umask, not the temp
    file's 0600); the temp file is removed on any error we can catch, and a killed writer's
    leftover is removed by the next write."""
    path = writable_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        st = os.lstat(path) if path.is_symlink() or path.exists() else None
        mode = st.st_mode & 0o7777 if st is not None and stat.S_ISREG(st.st_mode) else 0o666 & ~_UMASK
        _remove_stale_temps(path)
        fd, tmp = _new_temp(path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)  # a symlink at `path` is replaced by the file, its target untouched
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


MAX_JSON_BYTES = 64 * 2**20  # records and configs are kilobytes; a training history at most a few MB


def read_json(path: Path):
    """The parsed content of a JSON file the studio reads (a model record, a Hugging Face config,
    a shard index); StoreError naming the file for anything that is not plain JSON text.

    json.loads raises more than JSONDecodeError: ValueError for an integer of more than 4,300
    digits, RecursionError for deep nesting. A lone surrogate (an escaped "\\ud800") parses but
    cannot be printed or written as UTF-8 later, so it is refused here, where the file is known."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise StoreError(f"{path}: {size:,} bytes, more than the {MAX_JSON_BYTES:,} such a JSON file may have")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise StoreError(f"{path}: not UTF-8 text (byte {e.start}), so not a JSON file") from None
    except OSError as e:
        raise StoreError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        data = json.loads(text)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # a lone surrogate anywhere: UnicodeEncodeError
    except UnicodeEncodeError:
        raise StoreError(f"{path}: holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not "
                         "text") from None
    except RecursionError:
        raise StoreError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise StoreError(f"{path}: not valid JSON ({first[:200]})") from None
    return data


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
            if not isinstance(meta, dict):
                raise StoreError(f"{path}: its metadata is not a JSON object (the file is damaged)")
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        return tensors, meta
    except (SafetensorError, OSError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StoreError(f"{path}: not a readable safetensors file ({first}); it may be truncated") from None


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape from a safetensors file's header, no tensor read: a file's names and
    sizes can be checked before its data is (an extra tensor of 100 GB is refused unread)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: file not found (expected a .safetensors weights file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StoreError(f"{path}: not a readable safetensors file ({first}); it may be truncated") from None


def check_shapes(path: Path, expected: dict[str, tuple], found: dict[str, tuple]) -> None:
    """StoreError when a weights file lacks tensors, has extra ones, or shapes differ."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise StoreError(f"{path}: weights do not match the model's config ({what}, "
                         f"{len(missing)} missing, {len(extra)} unexpected tensors)")
    for key, shape in expected.items():
        if tuple(found[key]) != tuple(shape):
            raise StoreError(f"{path}: tensor {key} has shape {tuple(found[key])}, the config implies {tuple(shape)}")


def checked_weights(path: Path, tensors: dict) -> dict:
    """Weights as float32, checked: StoreError for a tensor that is not floating point or holds
    NaN or infinite values (a model that would answer every query with NaN distances); a
    conversion from another float type is said aloud in the log (the command line prints it)."""
    import logging

    import torch

    out, converted = {}, set()
    for key, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise StoreError(f"{path}: tensor {key} is {str(tensor.dtype).removeprefix('torch.')}, "
                             "not floating-point weights")
        if tensor.dtype != torch.float32:
            converted.add(str(tensor.dtype).removeprefix("torch."))
            tensor = tensor.to(torch.float32)
        if not bool(torch.isfinite(tensor).all()):
            raise StoreError(f"{path}: tensor {key} holds NaN or infinite values")
        out[key] = tensor
    if converted:
        logging.getLogger("engine.store").warning(
            "%s: weights stored as %s were converted to float32", path, ", ".join(sorted(converted)))
    return out


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
