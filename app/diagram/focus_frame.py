"""A frame around the diagram while it has the keyboard focus.

Tab reaches the diagram (its arrows move between nodes, Enter picks one), but the view drew
nothing to say so: the style's frame of a QGraphicsView looks the same focused or not. This
child lies over the view's edge, lets the mouse through, and draws the palette's highlight
colour while the view has the focus."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QPainter, QPalette, QPen
from PySide6.QtWidgets import QWidget

FRAME_WIDTH = 2


class FocusFrame(QWidget):
    def __init__(self, view: QWidget):
        super().__init__(view)
        self._view = view
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.NoFocus)
        self.setGeometry(view.rect())
        self.setVisible(view.hasFocus())
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.FocusIn, QEvent.FocusOut):
            self.setGeometry(self._view.rect())
            self.setVisible(kind == QEvent.FocusIn)
            self.raise_()
        elif kind == QEvent.Resize:
            self.setGeometry(self._view.rect())
        return False

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setPen(QPen(self.palette().color(QPalette.Highlight), FRAME_WIDTH))
        half = FRAME_WIDTH / 2
        p.drawRect(self.rect().toRectF().adjusted(half, half, -half, -half))
        p.end()
