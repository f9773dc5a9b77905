"""What the panel says about a corrupted input as it is typed, picked or flipped (GUI thread).

Tokenizing a short input is cheap and torch-free, so the panel can tell at once where the two
inputs differ, or that they cannot be compared (another length, an unknown character), before
anything is sent to the engine. The engine checks again when it runs (engine/patching/setup.py).
"""
from __future__ import annotations

from engine.tasks.base import TaskInputError

MAX_CHANGES_SHOWN = 4


def position_items(labels: list[str]) -> list[str]:
    """Combo texts for positions: "5 'g'"."""
    return [f"{i} {label!r}" for i, label in enumerate(labels)]


def corrupt_ids(task, text: str) -> list[int]:
    """The corrupted input's token ids, as the job reads them (TaskInputError for unknown characters)."""
    return task.tokenize(text)


def corrupt_note(task, clean: list[int], text: str) -> tuple[str, bool]:
    """(one line about the corrupted input, whether it can be run)."""
    if not text.strip():
        return "Type a corrupted input, flip a token, or use a result's sample.", False
    try:
        ids = corrupt_ids(task, text)
    except TaskInputError as e:
        return str(e), False
    if len(ids) != len(clean):
        return (f"The corrupted input is {len(ids)} tokens long and the query {len(clean)}: "
                "patching needs the same length, so that positions align."), False
    return differences(task, clean, ids), True


def differences(task, clean: list[int], corrupt: list[int]) -> str:
    """"differs at 5 'g'→'a', 15 '3'→'2'" (or that it does not)."""
    changed = [i for i, (a, b) in enumerate(zip(clean, corrupt)) if a != b]
    if not changed:
        return "The corrupted input is the same as the query: change at least one token."
    show = task.vocab.token_strings
    a, b = show([clean[i] for i in changed]), show([corrupt[i] for i in changed])
    parts = [f"{i} {x!r}→{y!r}" for i, x, y in zip(changed, a, b)][:MAX_CHANGES_SHOWN]
    more = f" and {len(changed) - MAX_CHANGES_SHOWN} more" if len(changed) > MAX_CHANGES_SHOWN else ""
    return f"differs at {', '.join(parts)}{more}"


def flipped_text(task, ids: list[int], position: int, token: int | str) -> tuple[list[int], str]:
    """The ids with one token flipped and the text the line edit shows for them
    (TaskInputError when the flip changes nothing or hits the start token)."""
    from engine.patching.setup import flip_one

    new = flip_one(task, ids, position, token)
    return new, task.query_text(new)
