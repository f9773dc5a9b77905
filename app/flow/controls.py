"""The flow graph's controls above the diagram, and its colour legend underneath.

Threshold: edges whose contribution is below it are not drawn (docs/design.md §4, default 0.04).
Route only: only the edges from which the output node can be reached above the threshold.
By influence: instead of the threshold, keep the fewest nodes that hold a share of the influence
on the output (the slider then sets that share, 80% by default) and the edges between them that
hold 98% of theirs, as attribution-graph tools prune (engine/flow/prune.py).
Target: the token whose logit-lens probability colours the residual nodes (default: what the
model predicts at each position). It is typed with completion or picked from the list: a real
model's vocabulary has 50,257 tokens, too many to scroll through, so the list lives in one model
shared by the drop-down and the completer (filled in one call, not one item at a time).
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, QStringListModel, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.flow.slider_tip import say_value
from app.spill import Spill
from app.style import FLOW_EDGE, TARGET_SCALE, data_line, error_css, muted_css, neutral, text_color

DEFAULT_THRESHOLD = 0.04  # engine.flow.graph.DEFAULT_THRESHOLD (not imported: it pulls numpy in at start-up)
SLIDER_STEPS = 100  # the slider's integer value / 100 is the threshold
MIN_THRESHOLD, MAX_THRESHOLD = 0.01, 0.6
PREDICTION = "prediction"  # the model's own prediction at each position
TARGET_TIP = ("The token whose probability colours the residual nodes: type part of it for completion\n"
              "(prediction: the model's own prediction at each position)")


DEFAULT_NODE_SHARE = 0.8  # engine.flow.prune.DEFAULT_NODE_SHARE (kept here for the same reason)
MIN_SHARE = 0.1


class FlowControls(QWidget):
    thresholdChanged = Signal(float)
    routeOnlyChanged = Signal(bool)
    pruningChanged = Signal()  # influence pruning switched, or its share moved
    targetChanged = Signal(object)  # a token's text, or None for the model's own prediction
    stopRequested = Signal()  # stop the graph being computed
    computeRequested = Signal()  # compute the graph a Stop left undone

    def __init__(self, parent=None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(round(MIN_THRESHOLD * SLIDER_STEPS), round(MAX_THRESHOLD * SLIDER_STEPS))
        self.slider.setValue(round(DEFAULT_THRESHOLD * SLIDER_STEPS))
        self.slider.setMinimumWidth(90)
        self.slider.setToolTip("Edges whose contribution is below this are not drawn")
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(34)
        self.route = QCheckBox("route only")
        self.route.setToolTip("Only the edges that lead to the output node (the route), at this threshold")
        self.by_influence = QCheckBox("by influence")
        self.by_influence.setToolTip("Keep the fewest nodes that hold the slider's share of the influence on the "
                                     "output,\nand the edges between them that hold 98% of theirs "
                                     "(attribution-graph pruning)")
        self.share_slider = QSlider(Qt.Horizontal)
        self.share_slider.setRange(round(MIN_SHARE * SLIDER_STEPS), SLIDER_STEPS)
        self.share_slider.setValue(round(DEFAULT_NODE_SHARE * SLIDER_STEPS))
        self.share_slider.setMinimumWidth(90)
        self.share_slider.setToolTip("The share of the influence on the output that the nodes kept hold")
        self.share_slider.hide()
        self.lead = QLabel("<b>Flow</b> edges ≥")
        self.target = QComboBox()
        self.target.setEditable(True)
        self.target.setInsertPolicy(QComboBox.NoInsert)  # typing chooses a token, never adds one
        self.target.setToolTip(TARGET_TIP)
        self.target.setMinimumContentsLength(8)
        self.target.setMaxVisibleItems(20)
        self._tokens = QStringListModel([PREDICTION], self)
        self._index: dict[str, int] = {}
        self._chosen: str | None = None
        self.target.setModel(self._tokens)
        completer = QCompleter(self._tokens, self)
        completer.setFilterMode(Qt.MatchContains)  # "Mary" finds "␣Mary" and "Mary"
        completer.setCaseSensitivity(Qt.CaseSensitive)
        completer.setMaxVisibleItems(15)
        self.target.setCompleter(completer)
        self.status = QLabel()
        self.status.setStyleSheet(f"color: {muted_css(self)};")
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # long messages never widen the panel
        # Stop while a graph computes (a large model's takes seconds), Compute once stopped
        self.compute_button = QPushButton("Stop")
        keep = self.compute_button.sizePolicy()
        keep.setRetainSizeWhenHidden(True)  # the row keeps its height: the diagram does not jump as graphs come
        self.compute_button.setSizePolicy(keep)
        self.compute_button.hide()
        self._stopped = False  # the button offers Compute (a graph was stopped) rather than Stop
        self.compute_button.clicked.connect(self._on_compute_button)
        # the settings, then what the graph is doing, each in a row of its own (in one row, a
        # narrow diagram panel left the status no width and cut "by influence"); where even the
        # settings do not fit in one row, the checkboxes and the target move to a row between
        self.extras = QWidget()
        extras = QHBoxLayout(self.extras)
        extras.setContentsMargins(0, 0, 0, 0)
        extras.addWidget(self.route)
        extras.addWidget(self.by_influence)
        extras.addWidget(QLabel("target"))
        extras.addWidget(self.target)
        self._settings = QHBoxLayout()
        self._settings.addWidget(self.lead)
        self._settings.addWidget(self.slider, 1)
        self._settings.addWidget(self.share_slider, 1)
        self._settings.addWidget(self.value_label)
        self._settings.addWidget(self.extras)
        self._middle = QHBoxLayout()
        state = QHBoxLayout()
        state.addWidget(self.status, 1)
        state.addWidget(self.compute_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(2)
        lay.addLayout(self._settings)
        lay.addLayout(self._middle)
        lay.addLayout(state)
        self._spill = Spill(self, self.extras, self._settings, self._middle)
        self.slider.valueChanged.connect(self._on_slider)
        self.route.toggled.connect(self.routeOnlyChanged)
        self.by_influence.toggled.connect(self._on_pruning)
        self.share_slider.valueChanged.connect(self._on_share)
        self.target.currentIndexChanged.connect(lambda _: self._on_target())
        self.target.lineEdit().editingFinished.connect(self._on_target)
        completer.activated.connect(lambda _: self._on_target())
        self._on_slider(self.slider.value(), emit=False)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._spill.update(event.size().width())

    def threshold(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def route_only(self) -> bool:
        return self.route.isChecked() and not self.pruned()

    def pruned(self) -> bool:
        """Edges chosen by influence on the output rather than by the threshold."""
        return self.by_influence.isChecked()

    def node_share(self) -> float:
        return self.share_slider.value() / SLIDER_STEPS

    def set_node_share(self, value: float) -> None:
        self.share_slider.setValue(round(value * SLIDER_STEPS))

    def _on_pruning(self, on: bool) -> None:
        self.slider.setVisible(not on)
        self.share_slider.setVisible(on)
        self.route.setEnabled(not on)  # influence pruning keeps only what leads to the output already
        self.lead.setText("<b>Flow</b> nodes holding" if on else "<b>Flow</b> edges ≥")
        self._show_value()
        self.pruningChanged.emit()

    def _on_share(self, _value: int) -> None:
        self._show_value()
        self.pruningChanged.emit()

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.node_share():.0%}" if self.pruned() else f"{self.threshold():.2f}")
        # the arrow keys move the slider as a drag does: the value is said at the handle either way
        say_value(self.slider, f"edges ≥ {self.threshold():.2f}", "edges whose contribution is below this are "
                  "not drawn")
        say_value(self.share_slider, f"nodes holding {self.node_share():.0%}",
                  "the share of the influence on the output that the nodes kept hold")

    def target_token(self) -> str | None:
        """The chosen target token's text, or None for the model's own prediction."""
        return self._chosen

    def set_vocabulary(self, tokens: list[str]) -> None:
        """Offer each token of the model's vocabulary as a target (keeps the choice when it still exists)."""
        self._index = {}
        for i, token in enumerate(tokens):
            self._index.setdefault(token, i + 1)
        self.target.blockSignals(True)
        self._tokens.setStringList([PREDICTION, *tokens])
        keep = self._index.get(self._chosen, 0) if self._chosen is not None else 0
        self.target.setCurrentIndex(keep)
        self._chosen = tokens[keep - 1] if keep else None
        self.target.blockSignals(False)
        self._mark(True)

    def _on_target(self) -> None:
        text = self.target.currentText()
        if text in ("", PREDICTION):
            chosen = None
        elif text in self._index:
            chosen = text
        else:
            self._mark(False, f"{text!r} is not a token of this model: type part of one and pick it from the list")
            return
        self._mark(True)
        if chosen != self._chosen:
            self._chosen = chosen
            self.targetChanged.emit(chosen)

    def _mark(self, ok: bool, why: str = "") -> None:
        self.target.setStyleSheet("" if ok else f"QComboBox {{ border: 1px solid {error_css(self)}; }}")
        self.target.setToolTip(TARGET_TIP if ok else why)
        if not ok:
            self.set_status(why, error=True)

    def set_computing(self, state: str | None) -> None:
        """'computing' (Stop offered), 'stopped' (Compute offered) or None (no button)."""
        self._stopped = state == "stopped"
        self.compute_button.setVisible(state is not None)
        self.compute_button.setText("Compute" if self._stopped else "Stop")
        self.compute_button.setToolTip("Compute the flow graph of this query" if self._stopped
                                       else "Stop computing this flow graph")

    def _on_compute_button(self) -> None:
        (self.computeRequested if self._stopped else self.stopRequested).emit()

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet(f"color: {error_css(self) if error else muted_css(self)};")
        self.status.setText(text)
        self.status.setToolTip(text)

    def _on_slider(self, value: int, emit: bool = True) -> None:
        self._show_value()
        if emit:
            self.thresholdChanged.emit(value / SLIDER_STEPS)


class TargetLegend(QWidget):
    """A small colour bar: residual fill = the target's probability; violet edges = contributions."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedSize(300, 18)
        self.setToolTip("Residual nodes are filled by the logit lens's probability of the target token;\n"
                        "edges are contributions (LM Transparency Tool), thicker and darker when larger.")

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        ink = text_color(self)  # on the window: the widget paints no background of its own
        p.setPen(ink)
        font = p.font()
        font.setPointSizeF(7.5)
        p.setFont(font)
        p.drawText(QRectF(0, 0, 74, 18), Qt.AlignVCenter | Qt.AlignLeft, "P(target)  0")
        bar = QRectF(76, 4, 90, 10)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for stop, rgb in TARGET_SCALE:
            grad.setColorAt(stop, QColor(*rgb))
        p.fillRect(bar, grad)
        p.setPen(neutral(self))
        p.drawRect(bar)
        p.setPen(ink)
        p.drawText(QRectF(170, 0, 14, 18), Qt.AlignVCenter | Qt.AlignLeft, "1")
        edge = data_line(FLOW_EDGE, self)  # as the diagram draws the edges
        for k, (x, width) in enumerate(((196, 1.0), (214, 2.5), (232, 4.5))):
            edge.setAlphaF(0.3 + 0.3 * k)
            pen = p.pen()
            pen.setColor(edge)
            pen.setWidthF(width)
            p.setPen(pen)
            p.drawLine(x, 13, x + 12, 5)
        p.setPen(ink)
        p.drawText(QRectF(250, 0, 50, 18), Qt.AlignVCenter | Qt.AlignLeft, "weight")
        p.end()
