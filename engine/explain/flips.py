"""The flip test: what the local search's samples show about an activation.

The search's samples sit a few edits from the query, so nearly every candidate shares nearly
everything with it and the base-rate summary (summary.py) has nothing to say. What the search
does show is interventional: a feature whose change always pushes the input out of epsilon is
required; one that changed and stayed within epsilon is not. So for each of the query's features
(the task's `features`) and for each query token:

- changed: well-formed samples whose value differs from the query's (a token: the query token is
  not kept in place, by a token alignment of sample and query);
- within: how many of those stayed within epsilon;
- "required" / "must keep": at least MIN_CHANGES changes and at most REQUIRED_SHARE of them
  within epsilon (the thresholds the search was measured with: they named the decoder's headline
  reading on 8 of 10 queries); "can change": more stayed within; "too few changes": under
  MIN_CHANGES, no reading.

What it cannot show: a feature that the activation holds only jointly with another (addition's
x0.mid holds F1 + S1) reads as each part required, because a single edit changes one part; and a
feature that needs several coordinated edits to change is rarely changed at all ("too few").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from functools import lru_cache

MIN_CHANGES = 20
REQUIRED_SHARE = 0.02
MALFORMED_WARNING = 0.5  # warn when more than this share of in-epsilon samples fail the task's check
GENERIC = ("compared at", "token", "previous token")  # features every input has, listed after the task's


@dataclass
class FlipReading:
    name: str  # a feature ("count", "IO") or a query token ("3: ␣Mary")
    query_value: str
    changed: int
    within: int  # changed and still within epsilon
    verdict: str  # "required" / "must keep", "can change", "too few changes", "after the position"

    def describe(self) -> str:
        """'count changed 192 times, stayed within epsilon 0 times: required'."""
        return (f"{self.name} changed {self.changed} times, stayed within epsilon {self.within} "
                f"times: {self.verdict}")


@dataclass
class FlipTest:
    features: list[FlipReading]  # required first
    tokens: list[FlipReading]  # one per query position, in order
    samples: int  # distinct well-formed samples read
    within: int  # of those, within epsilon
    malformed_within: int  # samples within epsilon that fail the task's check

    @property
    def warning(self) -> str:
        total = self.within + self.malformed_within
        if total and self.malformed_within > MALFORMED_WARNING * total:
            return (f"{self.malformed_within} of {total} samples within epsilon fail the task's check: "
                    "the search left the input distribution")
        return ""

    def line(self, most: int = 4) -> str:
        """'flip test over 615 samples: count required (changed 192, within epsilon 0); ...'."""
        told = [f for f in self.features if f.verdict in ("required", "can change")][:most]
        head = f"flip test over {self.samples} samples ({self.within} within epsilon)"
        if not told:
            return f"{head}: no feature changed {MIN_CHANGES} times or more"
        parts = [f"{f.name} = {f.query_value} {f.verdict} (changed {f.changed}, within epsilon {f.within})"
                 for f in told]
        return f"{head}: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {"samples": self.samples, "within": self.within, "malformed_within": self.malformed_within,
                "thresholds": {"min_changes": MIN_CHANGES, "required_share": REQUIRED_SHARE},
                "features": [asdict(f) for f in self.features], "tokens": [asdict(t) for t in self.tokens]}


def verdict(changed: int, within: int, required: str = "required") -> str:
    if changed < MIN_CHANGES:
        return "too few changes"
    return required if within <= REQUIRED_SHARE * changed else "can change"


def kept_places(query: list[int], sample: list[int]) -> frozenset[int]:
    """Query places whose token the sample keeps in place (aligned blocks of equal tokens)."""
    return _kept(tuple(query), tuple(sample))


@lru_cache(maxsize=65536)
def _kept(query: tuple[int, ...], sample: tuple[int, ...]) -> frozenset[int]:
    # kept across calls: the window reads the flip test again after every streamed chunk and every
    # epsilon change, and the alignment (most of its cost: 28 ms for 768 IOI samples) never changes
    matcher = SequenceMatcher(a=query, b=sample, autojunk=False)
    return frozenset(i for block in matcher.get_matching_blocks() for i in range(block.a, block.a + block.size))


def edit_count(query: list[int], sample: list[int]) -> int:
    """Tokens changed from the query: replaced, inserted or deleted (a swap counts 2)."""
    return max(len(query), len(sample)) - len(kept_places(query, sample))


def flip_test(result) -> FlipTest:
    """The flip test of a QueryResult at its epsilon (any result; the search's is what it is for)."""
    q = result.query_tokens
    pieces = result.query_labels
    n_features = len(result.features)
    changed, within = [0] * n_features, [0] * n_features
    tok_changed, tok_within = [0] * len(q), [0] * len(q)
    samples = inside = malformed = 0
    for s in result.samples:
        if not s.well_formed:
            malformed += s.in_epsilon
            continue
        samples += 1
        inside += s.in_epsilon
        for i in range(n_features):
            if not s.agrees >> i & 1:
                changed[i] += 1
                within[i] += s.in_epsilon
        kept = kept_places(q, s.tokens)
        for i in range(len(q)):
            if i not in kept:
                tok_changed[i] += 1
                tok_within[i] += s.in_epsilon
    features = [FlipReading(name, value, changed[i], within[i], verdict(changed[i], within[i]))
                for i, (name, value) in enumerate(result.features)]
    order = ("required", "can change", "too few changes")
    # within a verdict the task's own features (count, IO, S) before the generic ones every
    # input has (the compared label, tokens, "has ␣Mary"), which a changed feature drags along
    features.sort(key=lambda f: (order.index(f.verdict), f.name in GENERIC or f.name.startswith("has "), -f.changed))
    tokens = [FlipReading(f"{i}: {pieces[i]}", pieces[i], tok_changed[i], tok_within[i],
                          "after the position" if i > result.query_position
                          else verdict(tok_changed[i], tok_within[i], "must keep"))
              for i in range(len(q))]
    return FlipTest(features, tokens, samples, inside, malformed)
