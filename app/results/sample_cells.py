"""Which tokens of a sample fit its cell, elided in the middle so the compared token shows.

A text model's sample is often wider than the column (IOI's prompts: every row's compared token
and answer sat past the right edge, cut with no mark). When the tokens do not fit, the compared
token and what follows it are kept, and the room left is shared a token at a time between the
start and the tokens just before the compared one, "…" standing for the middle; when even
that does not fit, "…", the compared token and what follows as far as it fits, then "…". The
full sample is in the tooltip of the "…" and of the row.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRect

ELLIPSIS = "…"


@dataclass
class ShownCells:
    cells: list[tuple[int, QRect]]  # (token index, its rect), left to right
    gaps: list[QRect]  # where "…" stands for tokens left out

    @property
    def elided(self) -> bool:
        return bool(self.gaps)


def shown_cells(tm, sample, rect: QRect) -> ShownCells:
    """The tokens of `sample` drawn in `rect` (tm: delegates.TokenMetrics), elided as above."""
    full = tm.cells(sample, rect.left(), rect.top(), rect.height())
    if not full or full[-1].right() <= rect.right():
        return ShownCells(list(enumerate(full)), [])
    widths = [c.width() + 1 for c in full]  # each with its 1 px gap
    gap_w = tm.char_w + 2 * tm.pad + 1
    room = rect.width() - tm.pad
    n = len(full)
    cp = min(max(sample.compared_position, 0), n - 1)
    tail_w = sum(widths[cp:])
    if tail_w + gap_w <= room:  # the start and the tokens before the compared one, in turn, "…" between
        head, before, used = 0, cp, gap_w + tail_w  # tokens [0, head) and [before, n) are kept
        grew = True
        while grew and head < before:
            grew = False
            for side in ("start", "context"):
                i = head if side == "start" else before - 1
                if head < before and used + widths[i] <= room:
                    used += widths[i]
                    head, before = (head + 1, before) if side == "start" else (head, before - 1)
                    grew = True
        order = [*range(head), None, *range(before, n)] if head < before else list(range(n))
    else:  # "…", the compared token and what follows as far as it fits, "…"
        used = gap_w if cp > 0 else 0
        order = [None] if cp > 0 else []
        for i in range(cp, n):
            if used + widths[i] + (gap_w if i < n - 1 else 0) > room and i > cp:
                order.append(None)
                break
            order.append(i)
            used += widths[i]
    out, gaps, x = [], [], rect.left() + tm.pad
    for i in order:
        w = gap_w - 1 if i is None else full[i].width()
        r = QRect(x, full[0].top(), w, full[0].height())
        (gaps.append(r) if i is None else out.append((i, r)))
        x += w + 1
    return ShownCells(out, gaps)


def sample_text(sample) -> str:
    """The whole sample as one line, the compared token in parentheses."""
    return "".join(f"({p})" if i == sample.compared_position else p for i, p in enumerate(sample.pieces))
