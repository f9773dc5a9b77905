"""Logging to a file: a GUI started from the launcher has no terminal, so the tracebacks a bug
report needs go to `<user log folder>/studio.log` (override the folder with
INVERSIONVIEW_LOG_DIR; tests do). The file rotates at 1 MB and keeps three old copies.

The app and the command line call `setup_logging` once at start; library use of the engine
configures nothing (the loggers are `engine.*` and `app.*`, handled only when set up).
"""
from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

APP_NAME = "inversionview-studio"
LOG_FILE = "studio.log"
LOGGERS = ("engine", "app")
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


def log_dir() -> Path:
    override = os.environ.get("INVERSIONVIEW_LOG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_log_path(APP_NAME)


def log_path() -> Path:
    return log_dir() / LOG_FILE


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Send the engine's and the app's log records to the log file (once per process and path).
    Returns the file, or None when it cannot be written (logging must never stop the app)."""
    path = log_path()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in logger.handlers):
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        except OSError:
            return None
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    return path
