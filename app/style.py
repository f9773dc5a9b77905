"""The app's colours in one place, with the display rules of docs/design.md §2 that use them."""
from __future__ import annotations

import math

from PySide6.QtGui import QColor

POSITIVE = (33, 102, 172)  # prob_diff > 0: the decoder likes this token more given z_q than z_BOS
NEGATIVE = (178, 24, 43)  # prob_diff < 0
BAR = (255, 140, 0)  # the orange distance bar
SELECTED = QColor("#2563eb")  # selected diagram node / token
SELECTED_BAND = QColor(255, 236, 170, 150)  # the selected token's column
UNTRAINED = QColor("#9ca3af")  # outline of sites the decoder was not trained on
DIVIDER = QColor("#d97706")  # the epsilon line in the table and histogram
ERROR = "#b91c1c"
MUTED = "#6b7280"

BAR_FULL_AT = 0.5  # bar width is min(D / 0.5, 1) of the cell


_LEVELS = 50  # prob_diff colours are looked up, not built, while painting thousands of tokens
_SHADES = {sign: [QColor(*(POSITIVE if sign > 0 else NEGATIVE), int(40 + 180 * k / _LEVELS))
                  for k in range(_LEVELS + 1)] for sign in (1, -1)}


def prob_diff_color(diff: float) -> QColor | None:
    """Token background: blue when positive, red when negative, stronger with |diff|; None near 0."""
    if diff is None or not math.isfinite(diff) or abs(diff) < 0.01:
        return None
    level = round(min(1.0, abs(diff) / 0.5) * _LEVELS)
    return _SHADES[1 if diff > 0 else -1][level]


def bar_fraction(distance: float) -> float:
    if not math.isfinite(distance):
        return 1.0
    return min(max(distance, 0.0) / BAR_FULL_AT, 1.0)


def bar_color(distance: float) -> QColor:
    """Orange, fading as the distance grows (fully opaque at 0, faint at BAR_FULL_AT and beyond)."""
    return QColor(*BAR, int(255 - 185 * bar_fraction(distance)))


# The logit lens's probability of the target token, on residual nodes of the flow graph: a
# sequential yellow-to-green scale (ColorBrewer YlGn), distinct from the selection blue, the
# prob_diff blue/red and the violet flow edges. Pale = the target is not read here yet.
TARGET_SCALE = ((0.0, (255, 255, 204)), (0.25, (194, 230, 153)), (0.5, (120, 198, 121)),
                (0.75, (49, 163, 84)), (1.0, (0, 104, 55)))
FLOW_EDGE = (109, 40, 217)  # violet: contribution edges and the attention heatmap


def target_prob_rgb(p: float) -> tuple[int, int, int]:
    p = min(max(float(p), 0.0), 1.0) if math.isfinite(p) else 0.0
    for (p0, c0), (p1, c1) in zip(TARGET_SCALE, TARGET_SCALE[1:]):
        if p <= p1:
            k = (p - p0) / (p1 - p0)
            return tuple(round(a + (b - a) * k) for a, b in zip(c0, c1))
    return TARGET_SCALE[-1][1]


def target_prob_hex(p: float) -> str:
    r, g, b = target_prob_rgb(p)
    return f"#{r:02x}{g:02x}{b:02x}"
