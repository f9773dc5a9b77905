"""Where a Save or Open dialog starts: the folder last used for a file, else the user's documents
folder, else the home folder; never the current directory (it was the repository's, when the app
was started from a checkout). The folder last used is kept in the settings (export_folder)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths


def start_folder(window) -> Path:
    settings = getattr(window, "settings", None)
    last = getattr(settings, "export_folder", "")
    if last and Path(last).is_dir():
        return Path(last)
    documents = QStandardPaths.writableLocation(QStandardPaths.DocumentsLocation)
    if documents and Path(documents).is_dir():
        return Path(documents)
    return Path.home()


def remember(window, path: str) -> None:
    settings = getattr(window, "settings", None)
    if path and settings is not None:
        settings.export_folder = str(Path(path).parent)
