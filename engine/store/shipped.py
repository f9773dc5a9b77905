"""Where the files the project ships beside its code live: the bundled `models/` and `resources/`.

In a checkout (or an editable install) they sit at the repository root, next to `engine/`.
An installed wheel carries them as data files under `<prefix>/share/inversionview-studio/`
(declared in pyproject.toml's `[tool.setuptools.data-files]`), because the top-level layout
keeps them outside the Python packages. One resolver, so the store and the app agree.
"""
from __future__ import annotations

import sys
from pathlib import Path

SHARE_NAME = "inversionview-studio"
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]


def shipped_dir(name: str, checkout_root: Path = CHECKOUT_ROOT, prefix: Path | None = None) -> Path:
    """The shipped folder `name` ("models" or "resources"): the checkout's when this code runs from
    one (it has pyproject.toml), else the installed copy under `prefix`/share (sys.prefix by default)."""
    if (checkout_root / "pyproject.toml").is_file() and (checkout_root / name).is_dir():
        return checkout_root / name
    return Path(prefix if prefix is not None else sys.prefix) / "share" / SHARE_NAME / name
