"""The app's remembered state: one JSON file with a schema version, saved atomically.

Lives under platformdirs.user_config_path('inversionview-studio') (or $INVERSIONVIEW_CONFIG_DIR,
which tests point at a tmp dir). A file that cannot be read as our settings is renamed aside
(settings.json.corrupt-<time>) and defaults are used, so a bad file never stops the app; a
value of the wrong type or out of its control's range keeps its default, the rest are used,
and the file is set aside the same way.
No Qt here: the window converts geometry to and from the base64 text stored.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from engine.query.types import METRICS, SAMPLERS
from engine.store.folders import DEFAULT_MODEL

APP_NAME = "inversionview-studio"
SCHEMA_VERSION = 1
FILE_NAME = "settings.json"


@dataclass
class AppSettings:
    model: str = DEFAULT_MODEL  # a model name, or a folder path for models opened from a folder
    query: str = ""  # empty: the task's first example
    site: str = ""  # short name; empty: the task's default site
    position: int = -1  # index into the query's tokens; -1: the task's default position
    epsilon: float = 0.1
    metric: str = "euclidean"
    candidates: int = 1024
    schedule: list = field(default_factory=list)  # [] = Auto, else [[temperature, noise], ...]
    seed: int = 0
    same_label: bool = False  # samples compared only at positions with the query position's label
    sampler: str = "auto"  # where candidates come from: "auto", "decoder" or "search" (the local search)
    geometry: str = ""  # QMainWindow.saveGeometry(), base64
    window_state: str = ""  # QMainWindow.saveState(), base64
    splitter_state: str = ""
    folders: list = field(default_factory=list)  # model folders opened by hand (Hugging Face ones too), newest last
    export_folder: str = ""  # where the last file was saved or opened: the next dialog starts there
    # the engine process's command, as a shell would split it; empty: this interpreter on this machine
    # (e.g. "ssh gpu-box /path/.venv/bin/python -m engine.server": app/workers/engine_link.py)
    engine_command: str = ""
    search_chains: int = 64  # the local search's settings (QueryOptions.chains, search_temperature, grammar)
    search_temperature: float = 0.25
    search_grammar: bool = True


def config_dir() -> Path:
    override = os.environ.get("INVERSIONVIEW_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_config_path(APP_NAME)


def settings_path() -> Path:
    return config_dir() / FILE_NAME


MAX_TEXT = 4096  # model paths, queries, site names
MAX_STATE = 65536  # Qt's saved geometry and dock state, base64
MAX_SCHEDULE = 64
MAX_FOLDERS = 20  # remembered model folders
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# What each stored value may be, beyond its type: the ranges the window's controls take, so a
# hand-edited or damaged file can never overflow a spin box or feed Qt a non-ASCII state.
LIMITS = {
    "model": lambda v: 0 < len(v) <= MAX_TEXT,
    "query": lambda v: len(v) <= MAX_TEXT,
    "site": lambda v: len(v) <= 64,
    "position": lambda v: -1 <= v <= 100_000,
    "epsilon": lambda v: math.isfinite(v) and 0.001 <= v <= 10.0,
    "metric": lambda v: v in METRICS,
    "candidates": lambda v: 16 <= v <= 65536,
    "schedule": lambda v: len(v) <= MAX_SCHEDULE and all(
        isinstance(e, list) and len(e) == 2 and all(_finite(x) for x in e) and e[0] > 0 and e[1] >= 0 for e in v),
    "seed": lambda v: 0 <= v <= 2**31 - 1,
    "same_label": lambda v: isinstance(v, bool),
    "sampler": lambda v: v in SAMPLERS,
    "geometry": lambda v: len(v) <= MAX_STATE and set(v) <= _BASE64,
    "window_state": lambda v: len(v) <= MAX_STATE and set(v) <= _BASE64,
    "splitter_state": lambda v: len(v) <= MAX_STATE and set(v) <= _BASE64,
    "export_folder": lambda v: len(v) <= MAX_TEXT,
    "engine_command": lambda v: len(v) <= MAX_TEXT and _splits(v),
    "search_chains": lambda v: 1 <= v <= 4096,
    "search_temperature": lambda v: math.isfinite(v) and 0.0 <= v <= 10.0,
    "search_grammar": lambda v: isinstance(v, bool),
    "folders": lambda v: len(v) <= MAX_FOLDERS and all(isinstance(p, str) and 0 < len(p) <= MAX_TEXT for p in v),
}


def _splits(text: str) -> bool:
    from app.workers.engine_link import parse_command

    try:
        return not text or bool(parse_command(text))
    except ValueError:
        return False


def _coerce(value, default):
    """The stored value when it has the default's type (ints accepted for floats), else None."""
    if isinstance(default, bool):
        return value if isinstance(value, bool) else None
    if isinstance(default, float):
        return float(value) if _finite(value) else None
    if isinstance(default, int):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return value if isinstance(value, type(default)) else None


def from_dict(data: dict, rejected: list | None = None) -> AppSettings:
    """Settings from a stored dict, value by value: one of the wrong type or out of its range
    keeps its default (and its name goes into `rejected`)."""
    out = AppSettings()
    for f in fields(AppSettings):
        if f.name not in data:
            continue
        value = _coerce(data[f.name], getattr(out, f.name))
        check = LIMITS.get(f.name)
        if value is not None and (check is None or check(value)):
            setattr(out, f.name, value)
        elif rejected is not None:
            rejected.append(f.name)
    return out


class SettingsStore:
    """Loads once, saves on request; `note` says when a damaged file was set aside."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else settings_path()
        self.note = ""

    def load(self) -> AppSettings:
        if not self.path.is_file():
            return AppSettings()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            version = data.get("schema")
            if version != SCHEMA_VERSION:
                raise ValueError(f"schema version {version!r}, this app reads {SCHEMA_VERSION}")
            rejected: list[str] = []
            settings = from_dict(data.get("settings", {}) if isinstance(data.get("settings"), dict) else {}, rejected)
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
            self._set_aside(str(e)[:200])
            return AppSettings()
        if rejected:  # keep the user's file for them to look at; the good values are used
            self._set_aside(f"{', '.join(rejected)} out of range or of the wrong type", kept="the other values kept")
        return settings

    def _set_aside(self, why: str, kept: str = "defaults used") -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
            self.note = f"Settings file could not be read ({why}); moved to {aside.name}, {kept}."
        except OSError as e:
            self.note = f"Settings file could not be read ({why}) nor moved aside ({e}); {kept}."

    def save(self, settings: AppSettings) -> None:
        """Write to a temp file in the same folder, then os.replace: never a half-written file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"schema": SCHEMA_VERSION, "settings": asdict(settings)}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
