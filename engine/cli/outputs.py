"""Checks of the files and folders a command will write, made before its work: a path that can
only fail at the end (a folder or a device in its place, a file where a folder should be, a
folder that is missing or read-only, a name longer than the file system allows) fails at once,
in one line, with nothing written."""
from __future__ import annotations

import os
from pathlib import Path

from engine.errors import OutputError


def _cannot(path: Path, e: OSError) -> OutputError:
    return OutputError(f"cannot write {str(path)[:300]}: {e.strerror or e}")


def _check_folder_of(path: Path, make_folders: bool) -> None:
    """The folder `path` goes in exists and can be written; with make_folders (the writer makes
    the missing ones), the nearest existing folder above it can."""
    parent = path.parent
    if not parent.is_dir():
        if not make_folders:
            raise OutputError(f"cannot write {path}: folder {parent} does not exist")
        parent = next(p for p in path.parents if p.exists())  # '.' or '/' at the latest
        if not parent.is_dir():
            raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable")


def check_output_file(path: Path | None, folder_ok: bool = False, make_folders: bool = False) -> None:
    """OutputError unless `path` (None: not asked for) can be written as a new or replaced file:
    its folder exists and nothing but a regular file is there. folder_ok: an existing folder is
    fine too (the writer names the file in it). make_folders: the writer makes missing folders."""
    from engine.store.safefiles import writable_target

    if path is None:
        return
    path = Path(path)
    try:
        if folder_ok and path.is_dir():
            _check_folder_of(path / "file", make_folders=False)
            return
        writable_target(path)  # a folder, a device or a pipe there; a name too long: OutputError
        _check_folder_of(path, make_folders)
    except OSError as e:
        raise _cannot(path, e) from None


def check_output_folder(path: Path | None) -> None:
    """OutputError unless `path` (None: not asked for) is a folder, or can be made as one (the
    model writers make the missing folders above it)."""
    if path is None:
        return
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"cannot write into {path}: it is a file or a device, not a folder")
        _check_folder_of(path, make_folders=True)
    except OSError as e:
        raise _cannot(path, e) from None
