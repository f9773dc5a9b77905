"""The results of one query: what was asked, the summary line, the histogram and the ranked table."""
from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QSplitter, QTableView, QVBoxLayout, QWidget

from app.results.delegates import DistanceBarDelegate, SampleDelegate, TextCellDelegate
from app.results.flip_line import flip_html, flip_tooltip, is_search, sampler_tooltip, search_legend
from app.results.histogram import DistanceHistogram
from app.results.table_model import DISTANCE, FACT, MULT, RANK, SAMPLE, ResultsTableModel, mult_text
from app.style import DIVIDER, NEGATIVE, POSITIVE, backdrop, error_css, legible, muted_css, swatch_html

FACT_WIDTH_SAMPLES = 500  # the facts measured for the fact column's width (the first rows: a long result is ranked)


HISTOGRAM_LEAST = 80  # px: its axis labels still apart


class ResultsTableView(QTableView):
    """A table that draws the epsilon divider under the last sample within epsilon."""

    painted = Signal()  # after a paint that showed rows (the latency benchmark listens)

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is None or model.rowCount() == 0:
            return
        k = model.in_epsilon_rows()
        if 0 < k <= model.rowCount():
            y = self.rowViewportPosition(k - 1) + self.rowHeight(k - 1) - 1
            if 0 <= y <= self.viewport().height():
                p = QPainter(self.viewport())
                p.setPen(QPen(DIVIDER, 2, Qt.DashLine))
                p.drawLine(0, y, self.viewport().width(), y)
                back = backdrop(self)
                p.setPen(legible(DIVIDER, back))  # the amber, darker on a light base, lighter on a dark one
                text = f"ε = {self._epsilon:g}"
                w = p.fontMetrics().horizontalAdvance(text) + 8
                p.fillRect(self.viewport().width() - w - 4, y - 14, w, 13, back)
                p.drawText(self.viewport().width() - w, y - 3, text)
                p.end()
        self.painted.emit()

    _epsilon = 0.1


class ResultsView(QWidget):
    epsilonDragged = Signal(float)
    flipsChanged = Signal(object)  # the shown search result's FlipTest, or None (the token map follows it)

    def __init__(self, parent=None, compact: bool = False):
        super().__init__(parent)
        self._result = None
        self._status = ""
        self.flips = None  # the shown search result's FlipTest (engine/explain/flips.py); None for the decoder's
        self.title = QLabel()
        self.title.setTextFormat(Qt.RichText)
        self.title.setWordWrap(True)
        self.summary = QLabel("Run a query to see samples whose activation comes close to the query's.")
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.preimage = QLabel()  # what the samples within epsilon share with the query
        self.preimage.setObjectName("preimage")
        self.preimage.setTextFormat(Qt.RichText)
        self.preimage.setWordWrap(True)
        self.preimage.hide()
        self.legend = QLabel(legend_html())
        self.legend.setWordWrap(True)  # a long legend (the local search's) must not widen the window
        self.legend.setToolTip(LEGEND_TIP)
        self.legend.setVisible(not compact)
        self.filter_label = QLabel()
        self.filter_label.setTextFormat(Qt.RichText)
        self.filter_label.linkActivated.connect(lambda _: self.show_all_rows())
        self.filter_label.hide()
        self.stale_label = QLabel()  # the options changed since this result ran
        self.stale_label.setObjectName("stale")
        self.stale_label.setWordWrap(True)
        self.stale_label.hide()
        self.histogram = DistanceHistogram()
        self.histogram.setMinimumHeight(HISTOGRAM_LEAST)  # a short window's height goes to the rows first
        self.histogram.binSelected.connect(self._on_bin)
        self.histogram.selectionCleared.connect(self._on_bin_cleared)
        self.histogram.epsilonDragged.connect(self.epsilonDragged)
        self.table_model = ResultsTableModel(self)
        self.table = ResultsTableView()
        self.table.setModel(self.table_model)
        self.table.setItemDelegateForColumn(SAMPLE, SampleDelegate(self.table))
        self.table.setItemDelegateForColumn(DISTANCE, DistanceBarDelegate(self.table))
        for col, text_of, align in ((RANK, lambda s: str(s.rank), Qt.AlignRight),
                                    (MULT, mult_text, Qt.AlignRight),
                                    (FACT, lambda s: s.fact, Qt.AlignLeft)):
            self.table.setItemDelegateForColumn(col, TextCellDelegate(text_of, align, self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setMouseTracking(True)
        vh = self.table.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.Fixed)  # uniform rows: fast for thousands
        vh.setDefaultSectionSize(24)
        hh = self.table.horizontalHeader()
        widths = ((RANK, 36), (MULT, 42), (DISTANCE, 100), (FACT, 56)) if compact else \
            ((RANK, 44), (MULT, 46), (DISTANCE, 150), (FACT, 84))
        for col, width in widths:
            hh.setSectionResizeMode(col, QHeaderView.Fixed)
            self.table.setColumnWidth(col, width)
        self._fact_width = dict(widths)[FACT]  # the least: a task's longer facts widen it (_fit_fact_column)
        hh.setSectionResizeMode(SAMPLE, QHeaderView.Stretch)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.histogram)
        split.addWidget(self.table)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        self._rows_split, self._split_moved = split, False  # the user's own split stays theirs
        split.splitterMoved.connect(lambda *_: setattr(self, "_split_moved", True))
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.summary)
        lay.addWidget(self.preimage)
        lay.addWidget(self.stale_label)
        lay.addWidget(self.legend)
        lay.addWidget(self.filter_label)
        lay.addWidget(split, 1)
        self.histogram.set_data(np.zeros(0), np.zeros(0), 0.1)
        self._apply_colors()

    def _apply_colors(self) -> None:
        """The labels' secondary and error text from the palette."""
        self.legend.setStyleSheet(f"color: {muted_css(self)};")
        self.filter_label.setStyleSheet(f"color: {muted_css(self)};")
        self.stale_label.setStyleSheet(f"color: {error_css(self)};")

    def resizeEvent(self, event) -> None:
        """A quarter of the height for the histogram, the rest for the rows (the splitter's own
        sharing went by size hints: at 1280 x 720 two rows showed)."""
        super().resizeEvent(event)
        if not self._split_moved:
            total = sum(self._rows_split.sizes())
            histogram = max(HISTOGRAM_LEAST, total // 4)
            self._rows_split.setSizes([histogram, max(total - histogram, 0)])

    def changeEvent(self, event) -> None:
        """A new palette: recolour the labels and the rich text written with the old one."""
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self._apply_colors()
            if self._result is not None:
                self.title.setText(describe_query(self._result))
                self._set_summary(self._status)  # the summary line may hold a message

    # ---- content ------------------------------------------------------------------------
    def set_stale(self, differences: list[str], model: str = "") -> None:
        """Say which options now differ from the ones the shown result ran with, and (model: e.g.
        "addition is open") that another model is open than the one that made it (neither: hide)."""
        options = ", ".join(differences)
        if model:
            made = f"this run is {self._result.model}'s, {model}" if self._result is not None else model
            text = (f"Model changed since this run ({made})" + (f"; options too ({options})" if options else "") +
                    ": Run again for the open model's samples.")
        else:
            text = f"Options changed since this run ({options}): Run again to apply them." if options else ""
        self.stale_label.setText(text)
        self.stale_label.setVisible(bool(text))

    def show_result(self, result, epsilon: float | None = None, status: str = "") -> None:
        """Show a (possibly partial) result; with epsilon, re-flag it for that epsilon first."""
        if result is not None and epsilon is not None and abs(result.epsilon - epsilon) > 1e-12:
            result = result.with_epsilon(epsilon)
        self._result = result
        if result is None:
            self.clear()
            return
        self.title.setText(describe_query(result))
        self.title.setToolTip(sampler_tooltip(result))
        self.legend.setText(search_legend() if is_search(result) else legend_html())
        self._set_summary(status)
        self.table._epsilon = result.epsilon
        self.table_model.set_result(result)
        self._fit_fact_column(result)
        self.histogram.set_data(self.table_model.distances(),
                                np.fromiter((s.multiplicity for s in result.samples), float, len(result.samples)),
                                result.epsilon)
        self._refresh_filter_label()

    def _fit_fact_column(self, result) -> None:
        """The fact column as wide as its longest fact (IOI's "IO ␣Justin, S ␣Erin"), within a third
        of the table; a fact wider than that ends in "…", whole in its tooltip."""
        fm = self.table.fontMetrics()
        facts = {s.fact for s in result.samples[:FACT_WIDTH_SAMPLES]}
        need = max((fm.horizontalAdvance(f) for f in facts), default=0) + 12
        width = max(self._fact_width, min(need, self.table.viewport().width() // 3))
        if width != self.table.columnWidth(FACT):
            self.table.setColumnWidth(FACT, width)

    def set_epsilon(self, epsilon: float):
        """Re-flag the shown samples for a new epsilon (no re-sampling); returns the new result."""
        if self._result is None:
            return None
        self._result = self._result.with_epsilon(epsilon)
        self.table._epsilon = epsilon
        self.table_model.set_result(self._result)
        self.histogram.set_epsilon(epsilon)
        self._set_summary(self._status)
        self._refresh_filter_label()
        return self._result

    def _set_summary(self, status: str) -> None:
        self._status = status
        r = self._result
        text = r.summary()
        if not r.complete:
            text += f" · {status or 'stopped'} after {r.candidates_done:,} of {r.candidates:,}"
        elif r.seconds:
            text += f" · {r.seconds:.1f} s (first results after {r.first_chunk_seconds:.2f} s)"
        self.summary.setText(text)
        if is_search(r):  # the search's samples are edits of the query: the flip test reads them, not base rates
            from engine.explain.flips import flip_test

            self.flips = flip_test(r)
            self.preimage.setText(flip_html(self.flips))
            self.preimage.setToolTip(flip_tooltip(self.flips))
            self.preimage.show()
            self.flipsChanged.emit(self.flips)
            return
        self._no_flips()
        self.preimage.setText(preimage_html(r))
        self.preimage.setToolTip(preimage_tooltip(r) if r.features else "")
        self.preimage.setVisible(bool(r.features))

    def result(self):
        return self._result

    def _no_flips(self) -> None:
        if self.flips is not None:
            self.flips = None
            self.flipsChanged.emit(None)

    def clear(self) -> None:
        self._result = None
        self._no_flips()
        self.title.setText("")
        self.title.setToolTip("")
        self.legend.setText(legend_html())
        self.summary.setText("Run a query to see samples whose activation comes close to the query's.")
        self.preimage.hide()
        self.table_model.set_result(None)
        self.histogram.set_data(np.zeros(0), np.zeros(0), 0.1)

    # ---- histogram filter -------------------------------------------------------------
    def _on_bin(self, lo: float, hi: float) -> None:
        self.table_model.set_distance_range(lo, hi)
        self._refresh_filter_label()

    def _on_bin_cleared(self) -> None:
        self.table_model.set_distance_range(None)
        self._refresh_filter_label()

    def show_all_rows(self) -> None:
        self.histogram.clear_selection()
        self._on_bin_cleared()

    def _refresh_filter_label(self) -> None:
        rng = self.table_model.distance_range()
        if rng is None:
            self.filter_label.hide()
            return
        lo, hi = rng
        upper = f"D &lt; {hi:.3f}" if hi != float("inf") else "D and beyond"  # rich text: escape '<'
        self.filter_label.setText(f"Showing {self.table_model.rowCount():,} of {self.table_model.total_samples():,} "
                                  f"samples with {lo:.3f} ≤ {upper} · <a href='all'>show all</a>")
        self.filter_label.show()


def legend_html() -> str:
    """The colour legend, one line (a short window's height goes to the rows): the two prob_diff
    colours as swatches, their words black or white on them; LEGEND_TIP says it in full."""
    return ("Token: p(token | z_q) − p(token | z_BOS) " + swatch_html(POSITIVE, "<b>+</b>") + " " +
            swatch_html(NEGATIVE, "<b>−</b>") + " · <s>struck through</s>: malformed · bar: D / 0.5")


LEGEND_TIP = ("Token background: p(token | z_q) − p(token | z_BOS), blue where positive, red where negative.\n"
              "Struck through: a malformed sample (the task's check rejects it); red never means that.\n"
              "Bar: the distance D / 0.5. Hover a token for its own distance.")


def describe_query(result) -> str:
    """One rich-text line: model, site (hook), position, the query with the compared token marked,
    the metric, and where samples were compared when not at every position."""
    from engine.store.export import compared_at

    pos = result.query_position
    label = escape(result.query_labels[pos]) if pos < len(result.query_labels) else ""
    q = result.query
    one_char_tokens = len(q) == len(result.query_tokens)  # the toy tasks: a character per token
    marked = f"{escape(q[:pos])}<b>({escape(q[pos])})</b>{escape(q[pos + 1:])}" if one_char_tokens and pos < len(q) \
        else escape(q)  # a text model's tokens are not characters: the position's label says which
    where = f" · compared at {escape(compared_at(result), quote=False)}" if result.same_label else ""
    source = " · <b>local search</b>" if is_search(result) else ""  # its settings: the title's tooltip
    return (f"<b>{escape(result.model)}</b> · site <b>{result.site_short}</b> <span style='color:{muted_css()}'>"
            f"({result.site_id})</span> · position {pos} '{label}' · query <tt>{marked}</tt> · "
            f"{result.metric}{where}{source}")


EVERYWHERE_MEANS = ("kept by nearly every candidate, within ε or not, so the decoder's samples tell nothing "
                    "beyond it being kept")
EVERYWHERE_SHORT = "nearly every candidate keeps these, so the samples tell nothing beyond their being kept"


def preimage_html(result, most: int = 5) -> str:
    """The preimage summary as one rich-text line, with the verdicts of `query --summary`
    (engine/explain/summary.py): the features the samples within epsilon share (bold), partly
    share, and those "everywhere" (named, not hidden: a reader of the paper sees them kept), each
    with its base rate."""
    from engine.explain.summary import MIN_CANDIDATES, summarize

    summary, muted = summarize(result), muted_css()
    if summary.in_epsilon < MIN_CANDIDATES:
        return (f"<span style='color:{muted}'>Within ε: {summary.in_epsilon} candidate(s), too few to say what "
                "they share.</span>")

    def share(f) -> str:
        return f"{escape(f.name)} = {escape(str(f.query_value))} in {f.share:.0%}"

    told = [f for f in summary.features if f.verdict in ("shared", "partly")][:most]
    parts = [f"{f'<b>{share(f)}</b>' if f.verdict == 'shared' else share(f)} "
             f"<span style='color:{muted}'>(all: {f.base_rate:.0%})</span>" for f in told]
    line = "Within ε: " + (" · ".join(parts) if parts else
                           f"<span style='color:{muted}'>no feature of the query beyond its base rate</span>")
    everywhere = [f for f in summary.features if f.verdict == "everywhere"]
    if everywhere:
        more = f" and {len(everywhere) - most} more" if len(everywhere) > most else ""
        line += (" · everywhere: " + ", ".join(f"{share(f)} <span style='color:{muted}'>(all: {f.base_rate:.0%})"
                                              "</span>" for f in everywhere[:most]) +
                 f"{more} <span style='color:{muted}'>– {EVERYWHERE_SHORT}</span>")
    return line


def preimage_tooltip(result) -> str:
    """Every feature's verdict, as `query --summary` prints them, and what the verdicts mean."""
    from engine.explain.summary import LIFT, SHARED, summarize

    summary = summarize(result)
    rows = "".join(f"<tr><td>{escape(f.name)}</td><td>{escape(str(f.query_value))}</td>"
                   f"<td align=right>{f.share:.0%}</td><td align=right>{f.base_rate:.0%}</td>"
                   f"<td>{f.verdict}</td></tr>" for f in summary.features)
    return (f"<p>{summary.in_epsilon:,} of {summary.candidates:,} candidates within ε.</p>"
            "<table cellpadding=2><tr><th align=left>feature</th><th align=left>query</th><th>within ε</th><th>all</th>"
            f"<th align=left>verdict</th></tr>{rows}</table>"
            f"<p><b>shared</b>: at least {SHARED:.0%} within ε, {LIFT:.0%} more than among all candidates. "
            f"<b>everywhere</b>: at least {SHARED:.0%} within ε, but {EVERYWHERE_MEANS}.</p>")
