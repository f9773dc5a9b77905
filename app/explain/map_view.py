"""The information map in the window: "Map this input" runs InversionView at every node of the
diagram (engine/explain/sweep.py, on the engine thread), then colours and labels each node by
what its preimage shares, with a legend, a progress bar and Cancel; a click on a mapped node
opens its full result.

Colours: one hue per feature (the first feature mapped gets the first colour), strong where the
feature is shared (at least 90% of the candidates within epsilon) or, at a node read by the local
search (a model without a decoder), required (the flip test: changing it left epsilon), pale where
it is only partly shared; grey where nothing of the input is shared beyond its base rate; no fill where too few
candidates came within epsilon to say. While a map is shown the flow graph's readouts are held
back (FlowView.hold), so the two never draw over each other.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.diagram.layout import DiagramOverlay
from app.progress import JobProgress
from app.style import error_css, muted_css
from app.workers.job_request import JobRequest
from engine.probed.sites import aliases, canonical_site

# Sixteen distinct hues (ColorBrewer Set2, then Set1's and Tableau's less saturated), none of them
# the selection blue, the flow graph's violet/green or the grey of "nothing shared": an addition
# input's map names up to 15 features (its digits, carries and the compared position)
FEATURE_COLOURS = ("#e78ac3", "#fc8d62", "#66c2a5", "#ffd92f", "#a6d854", "#e5c494", "#8da0cb", "#377eb8",
                   "#984ea3", "#a65628", "#17becf", "#bcbd22", "#e31a1c", "#4daf4a", "#ff7f00", "#7f7f7f")
NOTHING_SHARED = "#d1d5db"
LABEL_CHARS = 5
STRONG = ("shared", "required")  # a decoder node's "shared", a search node's "required" (engine/explain/sweep.py)


def _pale(hex_colour: str) -> str:
    """The hue mixed halfway with white: a feature only partly shared."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*((c + 255) // 2 for c in (r, g, b)))


def node_tooltip(row) -> str:
    lines = [f"information map: {row.site} @ {row.position} '{row.label}'",
             f"within epsilon: {row.in_epsilon} of {row.candidates} candidates ({row.share:.0%})"]
    if row.top is not None and row.top.verdict == "required":  # a local search's node: the flip test
        t = row.top
        lines.append(f"{t.name} = {t.query_value}: required (changing it left epsilon in {t.share:.0%} of "
                     "the search's changes)")
    elif row.top is not None:
        t = row.top
        lines.append(f"{t.name} = {t.query_value}: {t.share:.0%} within epsilon, {t.base_rate:.0%} of all "
                     f"({t.verdict})")
    else:
        lines.append(row.reading())
    lines.append("distance 10/50/90%: " + " / ".join(f"{d:.3f}" for d in row.quantiles))
    lines.append("click: open this node's samples")
    return "\n".join(lines)


def map_overlay(rows, n_layers: int) -> tuple[DiagramOverlay, dict[str, str]]:
    """The diagram overlay of a map's rows, and the legend's feature -> colour."""
    overlay, legend = DiagramOverlay(), {}
    for row in rows:
        colour = None
        if row.top is not None:
            name = row.top.name
            if name not in legend:
                legend[name] = FEATURE_COLOURS[len(legend) % len(FEATURE_COLOURS)]
            colour = legend[name] if row.top.verdict in STRONG else _pale(legend[name])
        elif row.in_epsilon >= 5:
            colour = NOTHING_SHARED
        # the value alone ("3", "g"): the fill says which feature (the legend), the tooltip and
        # the bar say it in words; "count = 3" on every node overlapped the next column
        label = str(row.top.query_value) if row.top is not None else None
        if label and len(label) > LABEL_CHARS:
            label = label[:LABEL_CHARS - 1] + "…"
        for short in aliases(row.site, n_layers):
            key = (short, row.position)
            if label:
                overlay.labels[key] = label
            if colour:
                overlay.colors[key] = colour
            overlay.tooltips[key] = node_tooltip(row)
    return overlay, legend


class MapBar(QWidget):
    """Under the diagram: the button, progress, Cancel, Clear and the legend."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.map_button = QPushButton("Map this input")
        self.map_button.setToolTip("Run InversionView at every site and position the decoder knows (without a "
                                   "decoder, or with 'local search' chosen: the task's sites, by local search),\n"
                                   "and colour each node by what its close samples share (the information map)")
        self.cancel_button = QPushButton("Cancel")
        self.clear_button = QPushButton("Clear map")
        self.progress = QProgressBar()
        self.job = JobProgress(self.progress)  # "105 / 1,332 nodes · about 0:40 left", in a bar that fits it
        self.legend = QLabel()
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.legend.hide()  # shown with text (set_legend)
        buttons = QHBoxLayout()
        for w in (self.map_button, self.progress, self.cancel_button, self.clear_button):
            buttons.addWidget(w, 1 if w is self.progress else 0)  # the bar grows to show the time left
        buttons.addStretch()  # after the bar: it takes the room it can use first
        lay = QVBoxLayout(self)  # the legend has a row of its own: beside the buttons it wrapped into a column
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(buttons)
        lay.addWidget(self.legend)
        self.set_state("idle")

    def set_legend(self, html: str) -> None:
        self.legend.setText(html)
        self.legend.setVisible(bool(html))

    def set_state(self, state: str) -> None:
        """idle, running, or shown (a map is on the diagram)."""
        self.progress.setVisible(state == "running")
        self.cancel_button.setVisible(state == "running")
        self.clear_button.setVisible(state == "shown")
        self.map_button.setEnabled(state != "running")


class MapController(QObject):
    """Runs maps through the engine client and draws them; owns nothing but the map's state."""

    resultChosen = Signal(object)  # a mapped node's full QueryResult, to show in the results
    mapFinished = Signal(object)  # the InformationMap (complete or cancelled)
    mapStarting = Signal()  # before a map is drawn: another overlay (the causal check) steps aside

    def __init__(self, engine, diagram, flow_view, bar: MapBar, parent=None):
        super().__init__(parent)
        self.engine, self.diagram, self.flow, self.bar = engine, diagram, flow_view, bar
        self.rows: list = []
        self.results: dict[tuple[str, int], object] = {}  # (diagram short, position) -> QueryResult
        self._request: JobRequest | None = None
        self._n_layers = 0
        self.shown_for: tuple | None = None  # (model key, text) of the map on the diagram
        self._legend_html = ""
        bar.map_button.clicked.connect(lambda: self.map_requested())
        bar.cancel_button.clicked.connect(self.cancel)
        bar.clear_button.clicked.connect(self.clear)
        engine.jobItem.connect(self._on_item)
        engine.jobFinished.connect(self._on_finished)
        engine.jobFailed.connect(self._on_failed)
        diagram.nodeClicked.connect(self._on_node_clicked)
        self.ask = None  # set by the window: () -> (model_key, text, n_layers, options) or a reason string

    # ---- running ----------------------------------------------------------------------------
    def map_requested(self) -> JobRequest | None:
        wanted = self.ask() if self.ask else "no window"
        if isinstance(wanted, str):
            self.bar.set_legend(f"<span style='color:{muted_css()}'>{escape(wanted)}</span>")
            return None
        model_key, text, n_layers, options = wanted
        return self.start(model_key, text, n_layers, options)

    def start(self, model_key: str, text: str, n_layers: int, options: dict | None = None) -> JobRequest:
        self.mapStarting.emit()
        self.clear()
        self._n_layers = n_layers
        self._request = JobRequest("map", model_key, {"text": text, "options": options or {}})
        self.flow.hold(True)
        self.bar.set_state("running")
        self.bar.job.busy()  # until the first node reports its total
        self.bar.set_legend("Mapping: the first nodes come in as they finish…")
        self.engine.run_job(self._request)
        return self._request

    def cancel(self) -> None:
        if self._request is not None:
            self.engine.cancel_job("map")
            self._finish(None, cancelled=True)

    def clear(self) -> None:
        """Take the map off the diagram and give it back to the flow graph."""
        if self._request is not None:
            self.engine.cancel_job("map")
        self._request, self.rows, self.results, self.shown_for = None, [], {}, None
        self.bar.set_state("idle")
        self.bar.set_legend("")
        self.flow.hold(False)

    def forget_message(self) -> None:
        """Another model is chosen or loaded: a message about the one before ("Cannot map: … no
        decoder") no longer holds; a map running or shown keeps its own legend."""
        if self._request is None and not self.rows:
            self.bar.set_legend("")

    @property
    def running(self) -> bool:
        return self._request is not None

    # ---- replies ----------------------------------------------------------------------------
    def _on_item(self, request, item, done: int, total: int) -> None:
        if request is not self._request:
            return
        row, result = item
        self.rows.append(row)
        for short in aliases(row.site, self._n_layers):
            self.results[(short, row.position)] = result
        self.bar.job.report(done, total)
        self._draw()

    def _on_finished(self, request, answer) -> None:
        if request is self._request:
            self._finish(answer)

    def _on_failed(self, request, message: str) -> None:
        if request is self._request:
            self._request = None
            self.bar.set_state("shown" if self.rows else "idle")
            self.bar.set_legend(f"<span style='color:{error_css()}'>Map failed: {escape(message)}</span>")
            if not self.rows:
                self.flow.hold(False)

    def _finish(self, answer, cancelled: bool = False) -> None:
        request, self._request = self._request, None
        if request is not None:
            self.shown_for = (request.model_key, request.params["text"])
        self.bar.set_state("shown" if self.rows else "idle")
        if not self.rows:
            self.flow.hold(False)
        self._draw(note="cancelled: " if cancelled or (answer is not None and not answer.complete) else "")
        if answer is not None:
            self.mapFinished.emit(answer)

    def _draw(self, note: str = "") -> None:
        overlay, legend = map_overlay(self.rows, self._n_layers)
        self.diagram.set_overlay(overlay)
        swatches = " ".join(f"<span style='background:{c}'>&nbsp;&nbsp;&nbsp;</span> {escape(name)}"
                            for name, c in legend.items())
        self._legend_html = (f"{swatches} (strong: shared, or required by the flip test) · pale: partly · "
                             f"<span style='background:{NOTHING_SHARED}'>"
                             "&nbsp;&nbsp;&nbsp;</span> nothing shared · blank: too few within ε")
        shared = sum(1 for r in self.rows if r.top is not None and r.top.verdict in STRONG)
        self.bar.set_legend(f"{note}{len(self.rows)} nodes, {shared} share a feature (labels: its value; "
                                f"click a node for its reading and samples) · {self._legend_html}")

    def _on_node_clicked(self, short: str, position: int) -> None:
        result = self.results.get((short, position))
        row = next((r for r in self.rows if (r.site, r.position) == (canonical_site(short), position)), None)
        if row is not None:
            self.bar.set_legend(f"<b>{escape(row.site)} @ {row.position} '{escape(row.label)}'</b> reads "
                                    f"<b>{escape(row.reading())}</b>" + (
                                        f" ({row.top.share:.0%} within ε, {row.top.base_rate:.0%} of all)"
                                        if row.top is not None and row.top.verdict != "required" else
                                        " (required by the flip test)" if row.top is not None else "") +
                                f" · {self._legend_html}")
        if result is not None and self._request is None:
            self.resultChosen.emit(result)
