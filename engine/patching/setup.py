"""A patching set-up: a clean input, a corrupted one, where the answer is read and how it is scored.

Both inputs must have the same number of tokens, so that a node's position means the same
place in each. The answer position is the task's (`Task.answer_position`: counting ':', addition
'=', IOI END) unless one is given; the two answer tokens are by default what each input has
right after it (counting: the clean count and the corrupted count). The metric is read from the
logits at the answer position:

- `logit_diff`: logit[clean answer] - logit[corrupt answer] (needs two different answers)
- `prob`: the softmax probability of the clean answer

No torch here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.tasks.base import TaskInputError

if TYPE_CHECKING:
    from engine.tasks.base import Task

METRICS = ("logit_diff", "prob")


@dataclass(frozen=True)
class PatchSetup:
    """Two inputs of one length (token ids) and how the answer is scored: the metric is read
    from the logits at answer_position; logit_diff = logit[answer] - logit[corrupt_answer]
    (logits, unbounded), prob = softmax probability of answer (0 to 1). Made by make_setup."""

    clean: tuple[int, ...]  # token ids as the model reads them (BOS ...)
    corrupt: tuple[int, ...]  # same length
    answer_position: int  # whose logits are read
    answer: int  # the clean answer's token id
    corrupt_answer: int  # the corrupted input's answer token id
    metric: str = "logit_diff"

    @property
    def n_tokens(self) -> int:
        return len(self.clean)

    @property
    def differing(self) -> list[int]:
        """Positions where the two inputs have different tokens."""
        return [i for i, (a, b) in enumerate(zip(self.clean, self.corrupt)) if a != b]


def make_setup(task: Task, clean_ids: Sequence[int], corrupt_ids: Sequence[int],
               position: int | str | None = None, metric: str = "logit_diff",
               answer: int | str | None = None, corrupt_answer: int | str | None = None) -> PatchSetup:
    """A checked set-up; TaskInputError (one line) for anything that would make it meaningless.

    position: the answer position as an index or a label of the clean input (default: the
    task's). answer, corrupt_answer: token ids or token texts (default: each input's token
    right after the answer position)."""
    if metric not in METRICS:
        raise TaskInputError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    clean, corrupt = [int(i) for i in clean_ids], [int(i) for i in corrupt_ids]
    if len(clean) != len(corrupt):
        raise TaskInputError(f"the clean input is {len(clean)} tokens long and the corrupted one {len(corrupt)}; "
                             "patching needs inputs of the same length, so that positions align")
    if clean == corrupt:
        raise TaskInputError("the corrupted input is the same as the clean one; change at least one token")
    pos = task.answer_position(clean) if position is None else task.resolve_position(clean, position)
    differ = [i for i, (a, b) in enumerate(zip(clean, corrupt)) if a != b]
    if differ[0] > pos:
        raise TaskInputError(f"the inputs differ only after the answer position {pos} (first at {differ[0]}); "
                             "a later token cannot change the answer: corrupt a token at or before it")
    if (answer is None or corrupt_answer is None) and pos + 1 >= len(clean):
        raise TaskInputError(f"the answer position {pos} is the input's last, so no token after it is the answer; "
                             "give both answer tokens (--answer and --corrupt-answer)")
    good = clean[pos + 1] if answer is None else token_of(task, answer)
    bad = corrupt[pos + 1] if corrupt_answer is None else token_of(task, corrupt_answer)
    if metric == "logit_diff" and good == bad:
        shown = task.vocab.token_strings([good])[0]
        raise TaskInputError(f"both inputs have the answer {shown!r} after position {pos}, so the logit difference "
                             "is 0 by definition; corrupt the answer too (a corruption that changes it), give "
                             "--corrupt-answer, or use --metric prob")
    return PatchSetup(tuple(clean), tuple(corrupt), pos, good, bad, metric)


def token_of(task, token: int | str) -> int:
    """A token id, given as an id or as the token's text (shown or written: '3', '␣Mary', ' Mary')."""
    vocab_size = task.vocab.vocab_size
    if isinstance(token, int):
        if not 0 <= token < vocab_size:
            raise TaskInputError(f"token id {token} is out of range; this vocabulary has ids 0-{vocab_size - 1}")
        return token
    found = task.vocab.token_id(token)
    if found is not None:
        return found
    if token.isascii() and token.isdigit() and len(token) < 10 and int(token) < vocab_size:
        return int(token)
    raise TaskInputError(f"unknown token {token[:40]!r}; give a token of {task.vocab.describe()[:200]} or an id")


def parse_flip(text: str) -> tuple[str, str]:
    """'POSITION=TOKEN' -> (position, token). The position is cut at the first '=' after its
    first character, so that addition's '=' works on both sides: '==5', '8=='."""
    cut = text.find("=", 1)
    if cut < 0 or cut == len(text) - 1:
        raise TaskInputError(f"expected a flip as POSITION=TOKEN (an index or label, then the new token), e.g. 3=b, "
                             f"got {text[:60]!r}")
    return text[:cut], text[cut + 1:]


def flip_one(task: Task, ids: Sequence[int], position: int | str, token: int | str) -> list[int]:
    """`ids` with the token at `position` (index or label) replaced by `token` (id or text)."""
    ids = [int(i) for i in ids]
    pos = task.resolve_position(ids, position)
    new = token_of(task, token)
    if pos == task.bos_position and ids[pos] == task.bos_id:
        raise TaskInputError(f"position {pos} is the start token (BOS); flip a token after it")
    if ids[pos] == new:
        shown = task.vocab.token_strings([new])[0]
        raise TaskInputError(f"position {pos} already holds {shown!r}; flip it to another token")
    ids[pos] = new
    return ids
