"""The flow graph's detail pane: everything the graph knows about one clicked node (VISIT-style).

Every node: its logit-lens top tokens with probabilities and, for residual nodes, how each
token's rank moved since the residual node before it at the same position; the target's rank
and probability; the strongest edges into it. Heads and MLPs: the tokens they promote and
suppress (direct logits). Heads: the layer's attention pattern for that head. MLPs: the top
neurons, read on demand on the engine thread (set_neurons).
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.flow.attention_heatmap import AttentionHeatmap
from app.flow.overlay import incoming, rank_change, token_text
from app.style import error_css, muted_css
from engine.probed.sites import previous_resid

PUSH_ROWS = 5  # promoted / suppressed tokens shown (the graph keeps top_k)
KIND_NAMES = {"resid": "residual stream", "head": "attention head", "mlp": "MLP output"}


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.NoSelection)
    table.setFocusPolicy(Qt.NoFocus)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
    table.verticalHeader().setDefaultSectionSize(20)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if c > 0 and text[:1] in "-0123456789.":
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            table.setItem(r, c, item)
    height = table.horizontalHeader().height() + sum(table.rowHeight(r) for r in range(len(rows))) + 4
    table.setFixedHeight(height)


def _colored(html: str, color: str) -> str:
    return f"<span style='color:{color}'>{html}</span>"


def _heading(text: str) -> QLabel:
    label = QLabel(f"<b>{escape(text)}</b>")
    label.setWordWrap(True)
    label.setContentsMargins(0, 6, 0, 0)
    return label


class NodeDetailPane(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # labels wrap, tables squeeze
        self.setMinimumWidth(300)
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(8, 6, 8, 6)
        self.title = QLabel("Click a node of the diagram to read it.")
        self.title.setWordWrap(True)
        self.target_label = QLabel()
        self.target_label.setWordWrap(True)
        self.top_heading = _heading("Logit lens: top tokens")
        self.top_table = _table(["#", "token", "p", "vs node before"])
        self.push_heading = _heading("Promotes / suppresses (direct logits)")
        self.push_table = _table(["promotes", "logit", "suppresses", "logit"])
        self.attention_heading = _heading("Attention pattern")
        self.heatmap = AttentionHeatmap()
        self.neuron_heading = _heading("Top neurons (|activation| × ‖W_out row‖)")
        self.neuron_status = QLabel()
        self.neuron_status.setWordWrap(True)
        self.neuron_table = _table(["neuron", "activation", "score", "promotes"])
        self.inputs_heading = _heading("Strongest inputs (≥ threshold)")
        self.inputs = QLabel()
        self.inputs.setWordWrap(True)
        self.inputs.setTextFormat(Qt.RichText)
        # what is special to a kind of node comes first: the heatmap of a head, an MLP's neurons
        for w in (self.title, self.target_label, self.attention_heading, self.heatmap, self.neuron_heading,
                  self.neuron_status, self.neuron_table, self.top_heading, self.top_table, self.push_heading,
                  self.push_table, self.inputs_heading, self.inputs):
            lay.addWidget(w)
        lay.addStretch(1)
        self.setWidget(body)
        self.node = None  # the FlowNode shown
        self.key: tuple[str, int] | None = None  # the diagram's (site, position) shown
        self.show_message("Click a node of the diagram to read it.")

    # ---- content ------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        self.node = None
        self.title.setText(_colored(escape(text), error_css(self) if error else muted_css(self)))
        for w in self._sections():
            w.hide()

    def _sections(self):
        return (self.target_label, self.top_heading, self.top_table, self.push_heading, self.push_table,
                self.attention_heading, self.heatmap, self.neuron_heading, self.neuron_status, self.neuron_table,
                self.inputs_heading, self.inputs)

    def show_node(self, graph, short: str, position: int, threshold: float):
        """Show the graph's node (short, position); returns the FlowNode, or None when the graph has none."""
        self.key = (short, position)
        try:
            node = graph.node(short, position)
        except Exception:  # noqa: BLE001 - e.g. attn{L}: the flow graph splits it into heads
            layer = "".join(c for c in short if c.isdigit())
            self.show_message(f"{short} is not a node of the flow graph: attention is drawn as its heads "
                              f"(a{layer}.0 …). Click a head to read it.")
            return None
        self.node = node
        for w in self._sections():
            w.hide()
        tok = graph.token_labels[position]
        label = graph.position_labels[position]
        alias = f" (= {node.site.short})" if node.site.short != short else ""
        self.title.setText(f"<b style='font-size:11pt'>{escape(short)}</b>{escape(alias)} at position {position} "
                           f"'{escape(label)}' (token '{escape(tok)}') · {KIND_NAMES[node.kind]} · "
                           f"‖x‖ {node.norm:.2f}")
        self._show_top(graph, node)
        if node.kind != "resid":
            rows = []
            for k in range(min(PUSH_ROWS, max(len(node.promoted), len(node.suppressed)))):
                p = node.promoted[k] if k < len(node.promoted) else None
                s = node.suppressed[k] if k < len(node.suppressed) else None
                rows.append([repr(token_text(graph, p[0])) if p else "", f"{p[1]:+.2f}" if p else "",
                             repr(token_text(graph, s[0])) if s else "", f"{s[1]:+.2f}" if s else ""])
            _fill(self.push_table, rows)
            self.push_heading.show()
            self.push_table.show()
        if node.kind == "head":
            self.heatmap.set_pattern(graph.attention[node.site.layer, node.site.head],
                                     [f"{t}" for t in graph.token_labels], position)
            self.attention_heading.setText(f"<b>Attention pattern of {escape(node.site.short)}</b> "
                                           f"<span style='color:{muted_css(self)}'>(rows: query, columns: source; "
                                           f"row {position} outlined)</span>")
            self.attention_heading.show()
            self.heatmap.show()
        if node.kind == "mlp":
            self.neuron_heading.show()
            self.set_neurons_status("Reading the top neurons…")
        self._show_inputs(graph, node, threshold)
        return node

    def _show_top(self, graph, node) -> None:
        before = None
        prev = previous_resid(node.site.short, getattr(graph, "parallel_attn_mlp", False))
        if prev is not None:
            before = graph.node(prev, node.position)
        rows = [[str(r), repr(token_text(graph, i)), f"{p:.3f}", rank_change(i, r, before)]
                for r, (i, p) in enumerate(node.top, start=1)]
        self.top_table.setHorizontalHeaderItem(3, QTableWidgetItem(f"vs {prev}" if prev else ""))
        _fill(self.top_table, rows)
        target = repr(token_text(graph, node.target))
        if node.target_rank is not None:
            text = f"Target {escape(target)}: rank <b>{node.target_rank}</b>, p <b>{node.target_prob:.3f}</b>"
            if before is not None and before.target_rank is not None:
                text += f" <span style='color:{muted_css(self)}'>(at {prev}: rank {before.target_rank}, " \
                        f"p {before.target_prob:.3f})</span>"
        else:
            text = f"Target {escape(target)}: p <b>{node.target_prob:.3f}</b> in this part's logit lens"
        self.target_label.setText(text)
        for w in (self.target_label, self.top_heading, self.top_table):
            w.show()

    def _show_inputs(self, graph, node, threshold: float) -> None:
        edges = incoming(graph, node.key, threshold)
        if not edges:
            text = _colored("none (x0.pre is the embedding)" if node.site.short == "x0.pre"
                            else f"none above {threshold:.2f}", muted_css(self))
        else:
            text = "<br>".join(f"{escape(site)} @ {pos} '{escape(graph.position_labels[pos])}': "
                               f"<b>{weight:.3f}</b>" for (site, pos), _, weight in edges)
        self.inputs.setText(text)
        self.inputs_heading.show()
        self.inputs.show()

    # ---- MLP neurons (from the engine thread) ---------------------------------------------
    def set_neurons_status(self, text: str, error: bool = False) -> None:
        self.neuron_status.setText(_colored(escape(text), error_css(self) if error else muted_css(self)))
        self.neuron_status.show()
        self.neuron_table.hide()

    def set_neurons(self, graph, readouts) -> None:
        rows = [[str(n.index), f"{n.activation:+.3f}", f"{n.score:.3f}",
                 " ".join(repr(token_text(graph, i)) for i, _ in n.promoted[:4])] for n in readouts]
        _fill(self.neuron_table, rows)
        self.neuron_status.hide()
        self.neuron_table.show()
