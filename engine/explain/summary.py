"""The preimage summary: what the samples within epsilon share with the query.

For each candidate feature of the input (the task's `features`: counting's count, query letter,
letters and length; addition's digits and carries; IOI's names, template and order; a text
model's tokens), the share of in-epsilon candidates whose value equals the query's is set
against the same share among all candidates, the base rate: the decoder draws inputs near the
query, so a feature most candidates share anyway says little about the activation.

Shares count candidates, not distinct samples: a sample drawn five times weighs five.
A sample's position-dependent features (the token it was compared at) are read at its own
compared position, the query's at the query position.

Verdicts (thresholds below, and why):
- "shared": at least SHARED of the in-epsilon candidates agree, and LIFT more than the base
  rate. 90% is the bar the paper's IOI reading is held to here (at least 90% of in-epsilon
  samples name the query's IO); the lift keeps a feature that every candidate has anyway
  (the decoder's prior) from being read as information in the activation.
- "partly": at least PARTLY agree (a majority) and LIFT more than the base rate: the feature
  is over-represented near the query, but not required.
- "everywhere": at least SHARED agree, but so do nearly as many of all candidates: the
  comparison cannot tell whether the activation holds it.
- "not shared": otherwise.
- "too few": fewer than MIN_CANDIDATES candidates within epsilon: no reading at all.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

SHARED = 0.9
PARTLY = 0.5
LIFT = 0.1
MIN_CANDIDATES = 5
VERDICTS = ("shared", "partly", "everywhere", "not shared", "too few")


@dataclass
class FeatureShare:
    name: str  # "count", "IO", "A3" ...
    query_value: str | None
    share: float  # of in-epsilon candidates whose value equals the query's (0 when there are none)
    base_rate: float  # the same share among all candidates
    verdict: str  # one of VERDICTS

    @property
    def lift(self) -> float:
        return self.share - self.base_rate

    def describe(self) -> str:
        """'count = 3 in 100% (all candidates: 31%)'."""
        return f"{self.name} = {self.query_value} in {self.share:.0%} (all candidates: {self.base_rate:.0%})"


@dataclass
class PreimageSummary:
    features: list[FeatureShare]  # strongest first: by verdict, then lift
    in_epsilon: int  # candidates within epsilon (with multiplicity)
    candidates: int  # candidates in all

    @property
    def shared(self) -> list[FeatureShare]:
        return [f for f in self.features if f.verdict == "shared"]

    def top(self) -> FeatureShare | None:
        """The feature that best says what the preimage shares (None when nothing is shared at all)."""
        best = self.features[0] if self.features else None
        return best if best and best.verdict in ("shared", "partly") else None

    def line(self, most: int = 4) -> str:
        """'within epsilon: count = 3 in 100% (all candidates: 31%); query letter g in 64% (58%)'."""
        if self.in_epsilon < MIN_CANDIDATES:
            return f"within epsilon: {self.in_epsilon} candidate(s), too few to say what they share"
        told = [f for f in self.features if f.verdict in ("shared", "partly")][:most]
        if not told:
            return "within epsilon: no feature of the query is shared beyond its base rate"
        first, rest = told[0], told[1:]
        parts = [first.describe()] + [f"{f.name} = {f.query_value} in {f.share:.0%} ({f.base_rate:.0%})" for f in rest]
        return "within epsilon: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {"in_epsilon": self.in_epsilon, "candidates": self.candidates,
                "thresholds": {"shared": SHARED, "partly": PARTLY, "lift": LIFT, "min_candidates": MIN_CANDIDATES},
                "features": [asdict(f) for f in self.features]}


def verdict(share: float, base_rate: float, in_epsilon: int) -> str:
    if in_epsilon < MIN_CANDIDATES:
        return "too few"
    if share >= SHARED and share - base_rate >= LIFT:
        return "shared"
    if share >= SHARED:
        return "everywhere"
    if share >= PARTLY and share - base_rate >= LIFT:
        return "partly"
    return "not shared"


def summarize(result) -> PreimageSummary:
    """The summary of a QueryResult (engine/query/types.py) at its epsilon: its query's features
    and each sample's agreement bits, filled in when the query ran (`with_features` fills them
    for a result made elsewhere, such as an imported file)."""
    n_in = n_all = 0
    agree_in = [0] * len(result.features)
    agree_all = [0] * len(result.features)
    for s in result.samples:
        n_all += s.multiplicity
        n_in += s.multiplicity if s.in_epsilon else 0
        for i in range(len(result.features)):
            if s.agrees >> i & 1:
                agree_all[i] += s.multiplicity
                agree_in[i] += s.multiplicity if s.in_epsilon else 0
    features = []
    for i, (name, want) in enumerate(result.features):
        share = agree_in[i] / n_in if n_in else 0.0
        base = agree_all[i] / n_all if n_all else 0.0
        features.append(FeatureShare(name, want, share, base, verdict(share, base, n_in)))
    features.sort(key=lambda f: (VERDICTS.index(f.verdict), -f.lift, -f.share))
    return PreimageSummary(features, n_in, n_all)


def with_features(result, task):
    """The result with its query's features and every sample's agreement bits computed afresh
    for `task` (the model's own task: a text model's carries its tokenizer)."""
    from dataclasses import replace

    from engine.query.types import agreement, query_features

    features = query_features(task, result.query_tokens, result.query_position)
    samples = [replace(s, agrees=agreement(task, features, s.tokens, s.compared_position, result.query_tokens))
               for s in result.samples]
    return replace(result, features=features, samples=samples)
