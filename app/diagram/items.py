"""The graphics items of the model diagram: component nodes, wires and token labels."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem, QGraphicsSimpleTextItem

from app.style import SELECTED, UNTRAINED

NODE_FILL = QColor("#ffffff")
RESID_FILL = QColor("#f3f4f6")
OUTLINE = QColor("#374151")
LABEL_COLOR = QColor("#111827")


class _NodeMixin:
    """State and clicks shared by round (residual) and square (writer) nodes."""

    def _init_node(self, diagram, short: str, position: int, trained: bool, base_fill: QColor) -> None:
        self.diagram, self.short, self.position, self.trained = diagram, short, position, trained
        self.base_fill = base_fill
        self.readout_fill: QColor | None = None
        self.selected = False
        self.hovered = False
        self.label_item = QGraphicsSimpleTextItem(self)
        small = self.rect().width() < 12  # heads: labels go above, in a smaller font
        self.label_item.setFont(QFont("DejaVu Sans Mono", 7 if small else 9, QFont.Normal if small else QFont.Bold))
        self.label_item.setBrush(LABEL_COLOR)
        self.label_item.hide()
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.PointingHandCursor)
        self.setZValue(2)
        note = "" if trained else "\nThe decoder was not trained on this site: results may be poor."
        self.base_tooltip = f"{short} at position {position}{note}\nClick to invert this activation."
        self.setToolTip(self.base_tooltip)
        self.restyle()

    @property
    def key(self) -> tuple[str, int]:
        return self.short, self.position

    def restyle(self) -> None:
        if self.selected:
            pen = QPen(SELECTED.darker(130), 3)
            fill = SELECTED
        else:
            pen = QPen(OUTLINE if self.trained else UNTRAINED, 2.0 if self.hovered else 1.2)
            if not self.trained:
                pen.setStyle(Qt.DashLine)
            fill = self.readout_fill or self.base_fill
        self.setPen(pen)
        self.setBrush(QBrush(fill))

    def set_selected(self, on: bool) -> None:
        self.selected = on
        self.setZValue(3 if on else 2)
        self.restyle()

    def set_readout(self, label: str | None, fill: QColor | None, tooltip: str | None = None) -> None:
        """Per-node readout (e.g. the logit lens's top-1 token) and fill colour; None clears."""
        self.readout_fill = fill
        if label:
            self.label_item.setText(label)
            r, size = self.rect(), self.label_item.boundingRect()
            if r.width() < 12:  # a head: centred above it
                self.label_item.setPos(r.center().x() - size.width() / 2, r.top() - size.height() + 1)
            else:  # to the right, vertically centred
                self.label_item.setPos(r.right() + 2, r.center().y() - size.height() / 2)
            self.label_item.show()
        else:
            self.label_item.hide()
        self.setToolTip(self.base_tooltip + (f"\n{tooltip}" if tooltip else ""))
        self.restyle()

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.restyle()

    def hoverLeaveEvent(self, event) -> None:
        self.hovered = False
        self.restyle()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self.diagram.node_clicked(self.short, self.position)
            event.accept()
        else:
            event.ignore()


class CircleNode(_NodeMixin, QGraphicsEllipseItem):
    def __init__(self, diagram, short, position, trained, rect: QRectF):
        super().__init__(rect)
        self._init_node(diagram, short, position, trained, RESID_FILL)


class RectNode(_NodeMixin, QGraphicsRectItem):
    def __init__(self, diagram, short, position, trained, rect: QRectF):
        super().__init__(rect)
        self._init_node(diagram, short, position, trained, NODE_FILL)


def wire(a: QPointF, b: QPointF, pen: QPen, z: float = 0.0) -> QGraphicsPathItem:
    """A smooth curve from a to b (bottom to top), bending vertically so columns stay readable."""
    path = QPainterPath(a)
    dy = (b.y() - a.y()) * 0.5
    path.cubicTo(QPointF(a.x(), a.y() + dy), QPointF(b.x(), b.y() - dy), b)
    item = QGraphicsPathItem(path)
    item.setPen(pen)
    item.setZValue(z)
    return item


class TokenLabel(QGraphicsRectItem):
    """A token and its position label under its column; clicking selects the position."""

    def __init__(self, diagram, position: int, rect: QRectF, token: str, label: str):
        super().__init__(rect)
        self.diagram, self.position = diagram, position
        self.setPen(QPen(Qt.NoPen))
        self.setBrush(QBrush(Qt.transparent))
        self.setCursor(Qt.PointingHandCursor)
        self.setToolTip(f"position {position}: {token!r} ({label})")
        tok = QGraphicsSimpleTextItem(token, self)
        tok.setFont(QFont("DejaVu Sans Mono", 13, QFont.Bold))
        tok.setPos(rect.center().x() - tok.boundingRect().width() / 2, rect.top() + 2)
        lab = QGraphicsSimpleTextItem(f"{label} {position}" if label != token else str(position), self)
        lab.setFont(QFont("DejaVu Sans", 7))
        lab.setBrush(QColor("#6b7280"))
        lab.setPos(rect.center().x() - lab.boundingRect().width() / 2, rect.top() + 24)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self.diagram.position_clicked(self.position)
            event.accept()
