"""Histogram of candidate distances (weighted by multiplicity) with the epsilon line.

Clicking a bar filters the table to that distance range; clicking it again shows every row.
Dragging the epsilon line changes epsilon (re-ranking only, no re-sampling).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor

from app.style import BAR, DIVIDER, legible, neutral, scene_background, style_plot

pg.setConfigOptions(antialias=False)  # bars are axis-aligned; colours: style_plot, from the palette

N_BINS = 40


def bin_edges(distances: np.ndarray, epsilon: float) -> np.ndarray:
    """Edges from 0 to a round upper bound covering the data and epsilon (at most 2)."""
    top = float(np.max(distances)) if len(distances) else 0.5
    top = min(max(top, 2.5 * epsilon, 0.3), 2.0)
    top = math.ceil(top * 20) / 20
    return np.linspace(0.0, top, N_BINS + 1)


class DistanceHistogram(pg.PlotWidget):
    binSelected = Signal(float, float)  # lo, hi (hi is inf for the last, open bin)
    selectionCleared = Signal()
    epsilonDragged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._colors_from_palette()
        self.setMouseEnabled(False, False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setLabel("bottom", "distance D")
        self.setLabel("left", "candidates")
        self.getPlotItem().getAxis("left").setWidth(44)
        self.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self._bars = pg.BarGraphItem(x0=[], x1=[], height=[], brushes=[])
        self.addItem(self._bars)
        self._eps_line = pg.InfiniteLine(0.1, angle=90, movable=True, pen=pg.mkPen(DIVIDER, width=2),
                                         hoverPen=pg.mkPen(DIVIDER, width=4),
                                         label="ε {value:.3g}", labelOpts={"position": 0.9, "color": self._eps_ink})
        self._eps_line.sigPositionChangeFinished.connect(self._on_line_moved)
        self.addItem(self._eps_line)
        self.scene().sigMouseClicked.connect(self._on_click)
        self._edges = np.linspace(0, 0.5, N_BINS + 1)
        self._counts = np.zeros(N_BINS)
        self._epsilon = 0.1
        self._selected_bin: int | None = None
        self.setToolTip("Candidates by distance. Click a bar to show only its samples; drag the ε line.")

    def _colors_from_palette(self) -> None:
        style_plot(self)
        self._base = scene_background(self)
        self._outside = neutral(self)  # bars beyond epsilon
        self._eps_ink = legible(DIVIDER, self._base)  # the amber, as dark or light as text on it needs

    def changeEvent(self, event) -> None:
        """A new palette: the background, axes and bars again."""
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange and hasattr(self, "_selected_bin"):
            self._colors_from_palette()
            self._eps_line.label.setColor(self._eps_ink)
            self._redraw()

    def set_data(self, distances, weights, epsilon: float) -> None:
        distances = np.asarray(distances, dtype=float)
        self._epsilon = epsilon
        self._edges = bin_edges(distances, epsilon)
        clipped = np.minimum(distances, self._edges[-1] - 1e-9)  # beyond the top: the last bin
        self._counts, _ = np.histogram(clipped, bins=self._edges, weights=np.asarray(weights, dtype=float))
        self._eps_line.setValue(epsilon)  # not under blockSignals: the line's label follows sigPositionChanged
        if self._selected_bin is not None and self._counts[self._selected_bin] == 0:
            self._selected_bin = None
        self._redraw()
        self.setXRange(0, self._edges[-1], padding=0.02)
        self.setYRange(0, max(1.0, float(self._counts.max()) if len(self._counts) else 1.0) * 1.08, padding=0)

    def set_epsilon(self, epsilon: float) -> None:
        self._epsilon = epsilon
        self._eps_line.setValue(epsilon)  # not under blockSignals: the line's label follows sigPositionChanged
        self._redraw()

    def _redraw(self) -> None:
        brushes = []
        for i in range(N_BINS):
            mid = (self._edges[i] + self._edges[i + 1]) / 2
            color = QColor(*BAR, 220) if mid <= self._epsilon else QColor(self._outside)
            if self._selected_bin is not None and i != self._selected_bin:
                color.setAlpha(70)
            brushes.append(pg.mkBrush(color))
        self._bars.setOpts(x0=self._edges[:-1], x1=self._edges[1:], height=self._counts, brushes=brushes,
                           pens=[pg.mkPen(self._base, width=0.5)] * N_BINS)  # gaps between bars

    # ---- interaction --------------------------------------------------------------------
    def bin_range(self, i: int) -> tuple[float, float]:
        hi = math.inf if i == N_BINS - 1 else float(self._edges[i + 1])
        return float(self._edges[i]), hi

    def bin_at(self, x: float) -> int | None:
        if not 0 <= x < self._edges[-1]:
            return None
        return min(int(np.searchsorted(self._edges, x, side="right")) - 1, N_BINS - 1)

    def select_bin(self, i: int | None) -> None:
        """Filter to bin i (again: show all)."""
        if i is None or i == self._selected_bin or self._counts[i] == 0:
            self._selected_bin = None
            self._redraw()
            self.selectionCleared.emit()
            return
        self._selected_bin = i
        self._redraw()
        self.binSelected.emit(*self.bin_range(i))

    def clear_selection(self) -> None:
        self._selected_bin = None
        self._redraw()

    def _on_click(self, event) -> None:
        if event.button() != Qt.LeftButton or event.isAccepted() and self._eps_line.mouseHovering:
            return
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = vb.mapSceneToView(event.scenePos()).x()
        i = self.bin_at(x)
        if i is not None:
            self.select_bin(i)

    def _on_line_moved(self) -> None:
        value = float(self._eps_line.value())
        if value > 0:
            self.epsilonDragged.emit(round(value, 4))

    def counts(self) -> np.ndarray:
        return self._counts.copy()
