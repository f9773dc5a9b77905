"""Two pinned results side by side, each with its own histogram and table."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from app.results.view import ResultsView
from app.style import muted_css

HINT = "Pin two runs from the History panel (Pin left / Pin right) to compare them here."


class CompareView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.hint = QLabel(HINT)
        self.hint.setStyleSheet(f"color: {muted_css(self)};")
        self.sides = [ResultsView(compact=True), ResultsView(compact=True)]
        self.entries = [None, None]
        split = QSplitter(Qt.Horizontal)
        for side in self.sides:
            split.addWidget(side)
        lay = QVBoxLayout(self)
        lay.addWidget(self.hint)
        lay.addWidget(split, 1)

    def pin(self, entry, side: int, epsilon: float | None = None) -> None:
        self.entries[side] = entry
        self.sides[side].show_result(entry.result, epsilon)
        self.hint.setVisible(None in self.entries)

    def set_epsilon(self, epsilon: float) -> None:
        """Compare at one epsilon: both sides re-flagged together."""
        for view in self.sides:
            view.set_epsilon(epsilon)
