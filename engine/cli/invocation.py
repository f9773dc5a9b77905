"""The command a user typed, as model cards record it."""
from __future__ import annotations

import shlex
import sys


def command_line(leave_out: tuple[str, ...] = ()) -> str:
    """`python main.py ...` with this process's arguments, quoted for a shell."""
    return "python main.py " + " ".join(shlex.quote(a) for a in sys.argv[1:] if a not in leave_out)
