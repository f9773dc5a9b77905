"""What a patching run returns: plain numbers and strings (no tensors), and their JSON.

The share of a patch is (patched - clean) / (corrupt - clean): 0 when patching the node changes
nothing, 1 when it moves the metric all the way to the corrupted run's value (the node carries
the whole effect), negative when it moves the other way. It is None when the two inputs give the
same metric (there is no effect to share).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from engine.patching.setup import PatchSetup

NO_EFFECT = 1e-6  # |corrupt - clean| below this: no effect to share out


def share_of(patched: float, clean: float, corrupt: float) -> float | None:
    total = corrupt - clean
    return None if abs(total) < NO_EFFECT else (patched - clean) / total


@dataclass
class PatchInputs:
    """The set-up as people read it: tokens, labels, the answer and its two tokens."""

    clean_tokens: list[str]
    corrupt_tokens: list[str]
    position_labels: list[str]  # of the clean input
    differing: list[int]  # positions where the inputs differ
    answer_position: int
    answer: str  # the clean answer token
    corrupt_answer: str
    metric: str

    @classmethod
    def of(cls, task, setup: PatchSetup) -> PatchInputs:
        show = task.vocab.token_strings
        return cls(list(show(list(setup.clean))), list(show(list(setup.corrupt))),
                   list(task.position_labels(list(setup.clean))), setup.differing, setup.answer_position,
                   show([setup.answer])[0], show([setup.corrupt_answer])[0], setup.metric)

    @property
    def answer_label(self) -> str:
        return self.position_labels[self.answer_position]

    def changes(self) -> str:
        """The corruption in words: "5 'g' -> 'a', 15 '3' -> '2'"."""
        return ", ".join(f"{i} {self.clean_tokens[i]!r} -> {self.corrupt_tokens[i]!r}" for i in self.differing)

    def metric_words(self) -> str:
        if self.metric == "logit_diff":
            return f"logit[{self.answer!r}] - logit[{self.corrupt_answer!r}]"
        return f"p({self.answer!r})"


@dataclass
class PatchEffect:
    """One node patched alone: the metric after the patch and its share of the effect."""

    node: str  # a1.0@5
    site: str
    position: int
    position_label: str
    metric: float
    share: float | None


@dataclass
class PatchReport:
    """patch_nodes' result: the clean and corrupted runs' metric (PatchSetup.metric: a logit
    difference, or a probability 0 to 1) and, per node in the order patched, the metric with that
    node patched and its share of the effect ((patched - clean) / (corrupt - clean): 1 = all of
    it); `ranked()` largest share first; seconds: wall time; passes: forward passes."""

    inputs: PatchInputs
    clean: float  # the metric of the clean run
    corrupt: float  # the metric of the corrupted run
    effects: list[PatchEffect]  # in the order patched
    seconds: float = 0.0
    passes: int = 0  # forward passes, the corrupted run's included

    def ranked(self) -> list[PatchEffect]:
        """Largest share first (no share: last)."""
        return sorted(self.effects, key=lambda e: -e.share if e.share is not None else math.inf)

    def to_dict(self) -> dict:
        return _finite({"kind": "patch", **asdict(self)})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)


@dataclass
class CumulativeStep:
    """The first k nodes patched together."""

    node: str  # the node added at this step
    site: str
    position: int
    position_label: str
    metric: float
    moved: float  # clean - metric: how far the metric has moved from the clean value so far
    share: float | None


@dataclass
class CumulativeReport:
    """patch_cumulative's result: per step, the metric with the nodes so far patched together,
    how far it has moved from the clean value (clean - metric, in the metric's units) and its
    share of the effect; `line()` the paper's 'forward [moved, ...] of total'."""

    inputs: PatchInputs
    order: str  # "forward" (the nodes as given) or "backward" (reversed)
    clean: float
    corrupt: float
    steps: list[CumulativeStep] = field(default_factory=list)
    seconds: float = 0.0
    passes: int = 0

    @property
    def total(self) -> float:
        """clean - corrupt: how far patching everything moves the metric."""
        return self.clean - self.corrupt

    def line(self, digits: int = 2) -> str:
        """The paper's way of putting it: 'forward [15.13, 37.22, 41.18, 44.25] of 44.25'."""
        running = ", ".join(f"{s.moved:.{digits}f}" for s in self.steps)
        return f"{self.order} [{running}] of {self.total:.{digits}f}"

    def to_dict(self) -> dict:
        return _finite({"kind": "cumulative", **asdict(self), "total": self.total})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)


def _finite(value):
    """JSON has no NaN or infinity: such a float becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
