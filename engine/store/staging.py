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

from engine.errors import StoreError


def staging_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.staging")


def previous_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.previous")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)  # safe: every write replaces a file (new inode), never edits one
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _copy_entries(src: Path, dst: Path) -> None:
    """Copy a model folder's regular files (hard links where the file system allows) and its real
    sub-folders into `dst`. A symlink to a regular file becomes a regular copy of its content, so
    no later write can go through it to the file it names; anything else that is not a regular
    file (a link to a folder or a device, a broken link, a pipe) is refused before a byte is
    written: copying it could run without end (a link to /dev/zero, or `loop -> .`)."""
    dst.mkdir()
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        target = dst / entry.name
        if entry.is_dir(follow_symlinks=False):
            _copy_entries(Path(entry.path), target)
        elif entry.is_file(follow_symlinks=False):
            _link_or_copy(entry.path, str(target))
        elif entry.is_symlink() and entry.is_file():  # follows the link: a regular file at its end
            shutil.copyfile(entry.path, target)  # the content, as a file of this folder's own
        else:
            raise StoreError(f"{entry.path}: not a regular file or folder (a link to a folder or a device, a "
                             "broken link, a pipe); a model folder is rewritten with its own files only: "
                             "move it out of the folder and try again")


def _clear(path: Path) -> None:
    """Remove whatever is at `path` (a folder, a file, a link; a link's target is left alone)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def recover(folder: Path) -> None:
    """Put back a folder whose swap was cut between its two renames (the old model returns)."""
    folder = Path(folder)
    previous = previous_path(folder)
    if not folder.exists() and previous.is_dir() and not previous.is_symlink():
        os.rename(previous, folder)
        shutil.rmtree(staging_path(folder), ignore_errors=True)


@contextmanager
def rewrite_folder(folder: Path) -> Iterator[Path]:
    """Yields a staging copy of `folder` (or an empty one, for a new folder) to write into; when
    the block ends without an error the copy replaces the folder, otherwise it is thrown away."""
    folder = Path(folder)
    recover(folder)
    staging = staging_path(folder)
    try:
        _clear(staging)
        if folder.is_dir():
            _copy_entries(folder, staging)
        else:
            staging.mkdir(parents=True)
    except BaseException as e:  # a refused entry, a full disk: no half copy is left beside the folder
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise StoreError(f"cannot copy {folder} to rewrite it: {e.strerror or e}") from None
        raise
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = previous_path(folder)
    _clear(previous)
    try:
        if folder.exists():
            os.rename(folder, previous)
        os.rename(staging, folder)
    except BaseException:  # a failure we can catch: the old folder goes back, the copy goes
        recover(folder)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
