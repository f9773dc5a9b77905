"""Errors the engine raises for things a user did or can fix; each message is one readable line."""
from __future__ import annotations

from engine.tasks.base import TaskInputError


class StoreError(Exception):
    """A model folder or weights file is missing, damaged or does not match what was expected."""


class SiteError(ValueError):
    """An unknown site name, or a site the model does not have."""


class OutputError(Exception):
    """A file the user asked for cannot be written (nothing partial is left behind)."""


class Cancelled(Exception):
    """The user asked the work to stop."""


# Everything the command line turns into "error: ..." and exit code 2.
USER_ERRORS = (TaskInputError, StoreError, SiteError, OutputError)
