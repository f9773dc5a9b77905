"""The graphics items of the model diagram: component nodes, wires and token labels."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem, QGraphicsSimpleTextItem

from app.style import SELECTED

TOKEN_FONT = QFont("DejaVu Sans Mono", 13, QFont.Bold)
LABEL_FONT = QFont("DejaVu Sans", 7)


NODE_SLOTS = ("diagram", "short", "position", "trained", "base_fill", "readout_fill", "selected", "hovered",
              "label_item", "has_readout", "readout_tooltip", "base_tooltip")


class _NodeMixin:
    """State and clicks shared by round (residual) and square (writer) nodes.

    The nodes keep their state in slots, not in a __dict__: GPT-2 XL with every head shown has
    57,600 nodes, and a node with a dict of its own is two objects the garbage collector walks
    (a full pass over them took 50 ms, several times while such a diagram was built); slotted,
    it is none."""

    __slots__ = ()

    def _init_node(self, diagram, short: str, position: int, trained: bool, resid: bool) -> None:
        self.diagram, self.short, self.position, self.trained = diagram, short, position, trained
        self.base_fill = diagram.colors.resid_fill if resid else diagram.colors.node_fill
        self.readout_fill: QColor | None = None
        self.selected = False
        self.hovered = False
        self.label_item: QGraphicsSimpleTextItem | None = None  # made on the first readout: most never get one
        self.has_readout = False
        self.readout_tooltip = None  # str, or a callable formatting it when the node is hovered
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.PointingHandCursor)
        self.setZValue(2)
        self._set_base_tooltip()
        self.restyle()

    def _set_base_tooltip(self) -> None:
        note = "" if self.trained else "\nThe decoder was not trained on this site: results may be poor."
        heads = self.diagram.heads_note(self.short)
        self.base_tooltip = f"{self.short} at position {self.position}{note}\nClick to invert this activation.{heads}"
        tip = self.readout_tooltip
        self.setToolTip(self.base_tooltip + (f"\n{tip}" if isinstance(tip, str) and tip else ""))

    def set_trained(self, trained: bool) -> None:
        """Mark the node as a site the decoder was (or was not) trained on."""
        if trained != self.trained:
            self.trained = trained
            self._set_base_tooltip()
            self.restyle()

    @property
    def key(self) -> tuple[str, int]:
        return self.short, self.position

    def restyle(self) -> None:
        if self.selected:
            pen = QPen(SELECTED.darker(130), 3)
            fill = SELECTED
        else:
            colors = self.diagram.colors
            pen = QPen(colors.outline if self.trained else colors.untrained, 2.0 if self.hovered else 1.2)
            if not self.trained:
                pen.setStyle(Qt.DashLine)
            fill = self.readout_fill or self.base_fill
        self.setPen(pen)
        self.setBrush(QBrush(fill))

    def set_selected(self, on: bool) -> None:
        self.selected = on
        self.setZValue(3 if on else 2)
        self.restyle()

    def set_readout(self, label: str | None, fill: QColor | None, tooltip=None) -> None:
        """Per-node readout (e.g. the logit lens's top-1 token) and fill colour; None clears.
        tooltip: text, or a callable giving it (formatted only when the node is hovered)."""
        small = self.rect().width() < 12  # a head
        if small and self.diagram.n_heads > 1:
            label = None  # heads sit 8-17 pixels apart: their labels would overlap (the tooltip has it)
        shown = bool(label or fill is not None or tooltip)
        if not shown and not self.has_readout:
            return  # nothing to clear: clearing a GPT-2-sized diagram touches thousands of nodes
        self.has_readout = shown
        self.readout_fill = fill
        if label:
            if self.label_item is None:
                self.label_item = QGraphicsSimpleTextItem(self)  # a head's goes above, in a smaller font
                self.label_item.setFont(QFont("DejaVu Sans Mono", 7 if small else 9,
                                              QFont.Normal if small else QFont.Bold))
                self.label_item.setBrush(self.diagram.colors.label)  # on the scene's background
            self.label_item.setText(label)
            r, size = self.rect(), self.label_item.boundingRect()
            if small:  # a head: centred above it
                self.label_item.setPos(r.center().x() - size.width() / 2, r.top() - size.height() + 1)
            else:  # to the right, vertically centred
                self.label_item.setPos(r.right() + 2, r.center().y() - size.height() / 2)
            self.label_item.show()
        elif self.label_item is not None:
            self.label_item.hide()
        self.readout_tooltip = tooltip
        self.setToolTip(self.base_tooltip + (f"\n{tooltip}" if isinstance(tooltip, str) and tooltip else ""))
        self.restyle()

    def tooltip_text(self) -> str:
        """The whole tooltip, a lazy readout's formatted now (as hovering does before it shows)."""
        if callable(self.readout_tooltip):
            self.readout_tooltip = self.readout_tooltip()
            self.setToolTip(self.base_tooltip + (f"\n{self.readout_tooltip}" if self.readout_tooltip else ""))
        return self.toolTip()

    def hoverEnterEvent(self, event) -> None:
        self.hovered = True
        self.tooltip_text()  # before Qt asks for the tooltip
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

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() == Qt.LeftButton and self.diagram.node_double_clicked(self.short, self.position):
            event.accept()
        else:
            super().mouseDoubleClickEvent(event)


class CircleNode(_NodeMixin, QGraphicsEllipseItem):
    __slots__ = NODE_SLOTS

    def __init__(self, diagram, short, position, trained, rect: QRectF):
        super().__init__(rect)
        self._init_node(diagram, short, position, trained, resid=True)


class RectNode(_NodeMixin, QGraphicsRectItem):
    __slots__ = NODE_SLOTS

    def __init__(self, diagram, short, position, trained, rect: QRectF):
        super().__init__(rect)
        self._init_node(diagram, short, position, trained, resid=False)


def add_curve(path: QPainterPath, a: QPointF, b: QPointF) -> None:
    """Add a smooth curve from a to b (bottom to top), bending vertically so columns stay readable."""
    path.moveTo(a)
    dy = (b.y() - a.y()) * 0.5
    path.cubicTo(QPointF(a.x(), a.y() + dy), QPointF(b.x(), b.y() - dy), b)


class FlowWire(QGraphicsPathItem):
    """A flow edge: its own item (it has a tooltip and a weight of its own). In a dense overlay
    the curve is drawn without antialiasing: 2,000 thick translucent antialiased curves took
    180-370 ms a repaint (every scroll, hover and zoom), 22 ms without."""

    def __init__(self, a: QPointF, b: QPointF, pen: QPen, z: float, aliased: bool):
        path = QPainterPath()
        add_curve(path, a, b)
        super().__init__(path)
        self.setPen(pen)
        self.setZValue(z)
        self.aliased = aliased

    def paint(self, painter, option, widget=None) -> None:
        if not self.aliased:
            super().paint(painter, option, widget)
            return
        smooth = painter.testRenderHint(QPainter.Antialiasing)
        painter.setRenderHint(QPainter.Antialiasing, False)
        super().paint(painter, option, widget)
        painter.setRenderHint(QPainter.Antialiasing, smooth)


def wires(path: QPainterPath, pen: QPen, z: float = 0.0, dx: float = 0.0) -> QGraphicsPathItem:
    """One item drawing `path` moved right by dx: every column's wiring is the first column's,
    moved, so the path is made once per layout and shared (Qt copies a path only on a change)."""
    item = QGraphicsPathItem(path)
    item.setPen(pen)
    item.setZValue(z)
    item.setPos(dx, 0.0)
    return item


class TokenLabel(QGraphicsRectItem):
    """A token and its position label under its column; clicking selects the position."""

    def __init__(self, diagram, position: int, rect: QRectF, token: str, label: str):
        super().__init__(rect)
        self.diagram, self.position = diagram, position
        self.setPen(QPen(Qt.NoPen))
        self.setBrush(QBrush(Qt.transparent))
        self.setCursor(Qt.PointingHandCursor)
        self._token = QGraphicsSimpleTextItem(self)
        self._token.setFont(TOKEN_FONT)
        self._token.setBrush(diagram.colors.label)
        self._label = QGraphicsSimpleTextItem(self)
        self._label.setFont(LABEL_FONT)
        self._label.setBrush(diagram.colors.muted)
        self.text = (None, None)
        self.set_text(token, label)

    def set_text(self, token: str, label: str) -> None:
        """Show another token here (typing changes a column's token; the column stays)."""
        if (token, label) == self.text:
            return
        self.text = (token, label)
        rect, position = self.rect(), self.position
        self.setToolTip(f"position {position}: {token!r} ({label})")
        self._token.setText(token)
        self._token.setPos(rect.center().x() - self._token.boundingRect().width() / 2, rect.top() + 2)
        self._label.setText(f"{label} {position}" if label != token else str(position))
        self._label.setPos(rect.center().x() - self._label.boundingRect().width() / 2, rect.top() + 24)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self.diagram.position_clicked(self.position)
            event.accept()
