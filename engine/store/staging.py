"""A model folder is rewritten as one unit: a kill at any moment leaves the old model or the new one.

The new files are written into a staging copy beside the folder (`.NAME.staging`, its unchanged
files hard links to the old ones, so nothing large is copied); then two renames swap it in:
the folder becomes `.NAME.previous`, the staging copy becomes the folder. A writer killed
between the two renames leaves no folder but a complete previous one, which `recover` puts back
the next time the folder is looked for. The hidden names are skipped by the model listing.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def staging_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.staging")


def previous_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.previous")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # safe: every write replaces a file (new inode), never edits one in place
    except OSError:
        shutil.copy2(src, dst)


def recover(folder: Path) -> None:
    """Put back a folder whose swap was cut between its two renames (the old model returns)."""
    folder = Path(folder)
    previous = previous_path(folder)
    if not folder.exists() and previous.is_dir():
        os.rename(previous, folder)
        shutil.rmtree(staging_path(folder), ignore_errors=True)


@contextmanager
def rewrite_folder(folder: Path) -> Iterator[Path]:
    """Yields a staging copy of `folder` (or an empty one, for a new folder) to write into; when
    the block ends without an error the copy replaces the folder, otherwise it is thrown away."""
    folder = Path(folder)
    recover(folder)
    staging = staging_path(folder)
    shutil.rmtree(staging, ignore_errors=True)
    if folder.is_dir():
        shutil.copytree(folder, staging, copy_function=_link_or_copy)
    else:
        staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = previous_path(folder)
    shutil.rmtree(previous, ignore_errors=True)
    try:
        if folder.exists():
            os.rename(folder, previous)
        os.rename(staging, folder)
    except BaseException:  # a failure we can catch: the old folder goes back, the copy goes
        recover(folder)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
