"""How a decoder's training stands, as plain data (no torch): what `train_decoder` reports to its
on_progress callback, and what the engine process sends to the training dialog (engine/server/).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_CHECK_SITES = 4  # a check under a time limit still tests this many sites (or all, when fewer)


@dataclass
class QualityPoint:
    """One in-training check: the in-epsilon rate per site on training-split queries."""
    step: int
    seconds: float
    pairs: int
    rates: dict[str, float]  # site short name -> in-epsilon rate, of the sites this check tested
    well_formed: float
    of_sites: int = 0  # how many sites the decoder has (0: an older record, where every check tested all)
    took: float = 0.0  # seconds the check took (0: an older record)

    @property
    def average(self) -> float:
        return float(np.mean(list(self.rates.values()))) if self.rates else 0.0


@dataclass
class CheckProgress:
    """Where an in-training check stands: `done` of the `planned` sites tested, `seconds` into it.
    limit: the seconds after which it ends early (None: it tests every planned site);
    per_site: the seconds one site took in the last check (None before the first)."""
    done: int
    planned: int
    of_sites: int
    seconds: float
    limit: float | None
    per_site: float | None
    queries: int

    def _per_site(self) -> float | None:
        return self.seconds / self.done if self.done else self.per_site

    def expected(self) -> int:
        """How many sites the check will test: all planned, or under a time limit as many as
        fit in it at the pace so far (never fewer than MIN_CHECK_SITES, or than are done)."""
        per_site = self._per_site()
        if self.limit is None or not per_site:
            return self.planned
        fit = math.ceil(self.limit / per_site)
        return max(self.done, min(self.planned, max(fit, MIN_CHECK_SITES)))

    def left(self) -> float | None:
        """Seconds the check still needs, estimated (None: nothing to go by yet)."""
        per_site = self._per_site()
        return None if per_site is None else per_site * (self.expected() - self.done)


@dataclass
class DecoderProgress:
    step: int
    seconds: float
    budget: float
    loss: float  # nan before the first step
    pairs: int
    quality: QualityPoint | None = None  # set on the update sent as a check ends
    check: CheckProgress | None = None  # set on the updates during a check (its start, then after each site)
