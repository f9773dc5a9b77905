"""How "Fit diagram" (Ctrl+0, a double-click on the background) fits the diagram: every position.

The automatic fit keeps the drawing legible (ModelDiagram.MIN_LEGIBLE_SCALE) and scrolls to the
selection when the model is too wide for that; asked for by name, a fit shows every position
and every layer whatever the zoom (addition's positions 0-2 were left off screen). The row
names are drawn at a fixed size pinned to the view's left edge, so a small zoom must leave them
a gutter of their own: the view's scene rect reaches left of the drawing by the gutter's width,
and no name sits over a node."""
from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QFontMetrics

from app.diagram.layout import LEFT_MARGIN

FIT_ALL_SMALLEST = 0.05  # a fit shows everything down to this zoom (GPT-2 XL's 1,024 positions still scroll)
GUTTER_PAD = 10  # px beside the longest row name


def gutter_width(font: QFont, names) -> int:
    """Pixels the pinned row names take at the view's left edge."""
    fm = QFontMetrics(font)
    return max((fm.horizontalAdvance(name) for _, name in names), default=0) + GUTTER_PAD


def fit_all_scale(scene: QRectF, view_w: int, view_h: int, gutter: int, largest: float) -> float:
    """The zoom that shows the whole drawing right of the gutter (width and height), at most `largest`."""
    grid_w = max(scene.width() - LEFT_MARGIN, 1.0)
    scale = min((view_w - gutter) / grid_w, view_h / max(scene.height(), 1.0), largest)
    return max(scale, FIT_ALL_SMALLEST)


def view_rect(scene: QRectF, scale: float, gutter: int) -> QRectF:
    """The scene rect the view scrolls over: the drawing, and left of it room for the gutter."""
    left = min(scene.left(), LEFT_MARGIN - gutter / scale)
    return QRectF(left, scene.top(), scene.right() - left, scene.height())
