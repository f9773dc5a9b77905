"""One attention head's pattern as a heatmap: rows = query positions, columns = source positions.

The clicked position's row is outlined; token labels run along both axes; hovering a cell
names the pair and its weight. White = 0, violet = 1 (the colour of the flow edges).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPen
from PySide6.QtWidgets import QGraphicsRectItem

from app.style import ATTENTION_SCALE, SELECTED, style_plot

CMAP = pg.ColorMap([0.0, 1.0], list(ATTENTION_SCALE))


class AttentionHeatmap(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        style_plot(self)  # background and axes from the palette; the cells keep their data scale
        self.setMinimumHeight(200)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.matrix: np.ndarray | None = None  # (query, source) as shown
        self.highlighted: int | None = None
        self.image = pg.ImageItem()
        self.image.setLookupTable(CMAP.getLookupTable(nPts=256))
        self.addItem(self.image)
        self.getViewBox().invertY(True)  # query 0 at the top, as in a table
        self.getViewBox().setAspectLocked(True)
        self.setLabel("left", "query")
        self.setLabel("bottom", "source")
        self._row = QGraphicsRectItem()
        pen = QPen(SELECTED, 0)  # cosmetic: 1 px whatever the zoom
        pen.setWidthF(2.5)
        pen.setCosmetic(True)
        self._row.setPen(pen)
        self._row.setZValue(10)
        self.addItem(self._row)
        self._labels: list[str] = []
        self.scene().sigMouseMoved.connect(self._hover)

    def set_pattern(self, pattern: np.ndarray, labels: list[str], position: int | None) -> None:
        """pattern[query, source] of one head; labels: one per position; position: the row to outline."""
        self.matrix = np.asarray(pattern, dtype=np.float32)
        self._labels = list(labels)
        t = self.matrix.shape[0]
        # ImageItem's first axis is x: give it (source, query) so columns are sources
        self.image.setImage(self.matrix.T, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(0, 0, self.matrix.shape[1], t))
        ticks = [(i + 0.5, str(lab)) for i, lab in enumerate(self._labels)]
        self.getAxis("bottom").setTicks([ticks])
        self.getAxis("left").setTicks([ticks])
        self.highlighted = position if position is not None and 0 <= position < t else None
        if self.highlighted is None:
            self._row.hide()
        else:
            self._row.setRect(QRectF(0, self.highlighted, self.matrix.shape[1], 1))
            self._row.show()
        self.getViewBox().setRange(xRange=(0, self.matrix.shape[1]), yRange=(0, t), padding=0.02)

    def _hover(self, scene_pos) -> None:
        if self.matrix is None:
            return
        p = self.getViewBox().mapSceneToView(scene_pos)
        i, j = int(np.floor(p.y())), int(np.floor(p.x()))
        t, s = self.matrix.shape
        if 0 <= i < t and 0 <= j < s:
            self.setToolTip(f"query {i} {self._labels[i]!r} attends to source {j} {self._labels[j]!r}: "
                            f"{self.matrix[i, j]:.3f}")
        else:
            self.setToolTip("")

