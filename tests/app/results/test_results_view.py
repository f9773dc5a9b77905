"""Results: ranked rows, coloured tokens, distance bars, epsilon divider, histogram filter."""
import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from app.results.delegates import token_tooltip
from app.results.table_model import DISTANCE, SAMPLE, SAMPLE_ROLE, ResultsTableModel
from app.results.view import ResultsView
from app.style import bar_color, bar_fraction, prob_diff_color
from engine.query.types import QueryOptions
from tests.app.fakes import FakeEngine


@pytest.fixture
def result(fake_models):
    engine = FakeEngine()
    inv = engine.load_inverter("fake-counting")
    return engine.run_query(inv, "Bvvzccvczvvvzvcvc|v:8", "x1.post", ":", QueryOptions(candidates=1024, seed=3))


def test_the_table_model_lists_distinct_samples_in_rank_order(result):
    m = ResultsTableModel()
    m.set_result(result)
    assert m.rowCount() == len(result.samples) > 10
    d = [m.sample(r).distance for r in range(m.rowCount())]
    assert d == sorted(d)
    assert m.data(m.index(0, 0)) == "1"
    assert m.data(m.index(0, 1)) == f"×{result.samples[0].multiplicity}"
    assert "(" in m.data(m.index(0, SAMPLE))  # the compared token in parentheses
    assert m.data(m.index(0, SAMPLE), SAMPLE_ROLE) is result.samples[0]
    assert m.headerData(4, Qt.Horizontal) == "Count"
    assert m.in_epsilon_rows() == sum(s.in_epsilon for s in result.samples)


def test_a_distance_range_filters_rows_without_touching_the_result(result):
    m = ResultsTableModel()
    m.set_result(result)
    m.set_distance_range(0.1, 0.2)
    shown = [m.sample(r).distance for r in range(m.rowCount())]
    assert shown and all(0.1 <= d < 0.2 for d in shown)
    m.set_distance_range(None)
    assert m.rowCount() == len(result.samples)


def test_display_rules_of_design_section_2():
    assert prob_diff_color(0.3).blue() > prob_diff_color(0.3).red()  # positive: blue
    assert prob_diff_color(-0.3).red() > prob_diff_color(-0.3).blue()  # negative: red
    assert prob_diff_color(0.0) is None
    assert bar_fraction(0.25) == 0.5 and bar_fraction(0.9) == 1.0
    assert bar_color(0.0).alpha() > bar_color(0.4).alpha()  # fading as D grows


def test_token_tooltip_gives_the_per_position_distance(result):
    s = result.samples[0]
    text = token_tooltip(s, s.compared_position)
    assert f"{s.position_distances[s.compared_position]:.4f}" in text and "compared" in text
    assert "not compared" in token_tooltip(s, 0)  # BOS


def test_the_view_shows_summary_divider_and_bars(qtbot, result):
    v = ResultsView()
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    v.show_result(result)
    assert v.summary.text().startswith(result.summary())
    assert "within epsilon 0.1" in v.summary.text()
    assert v.table.model().in_epsilon_rows() > 0
    with qtbot.waitSignal(v.table.painted, timeout=2000):
        v.table.viewport().update()
    # the orange bar is painted in the distance column, its width following D
    m = v.table.model()
    row = next(r for r in range(m.rowCount()) if 0.04 < m.sample(r).distance < 0.2)
    v.table.scrollTo(m.index(row, DISTANCE))
    image = v.table.viewport().grab().toImage()
    rect = v.table.visualRect(m.index(row, DISTANCE))
    px = image.pixelColor(rect.left() + 6, rect.center().y())
    assert px.red() > 200 and px.blue() < 150, px.name()


def test_changing_epsilon_reranks_without_resampling(qtbot, result):
    v = ResultsView()
    qtbot.addWidget(v)
    v.show_result(result)
    before = v.table_model.in_epsilon_rows()
    new = v.set_epsilon(0.3)
    assert new.epsilon == 0.3 and new.samples[0].text == result.samples[0].text
    assert v.table_model.in_epsilon_rows() > before
    assert "epsilon 0.3" in v.summary.text()
    assert v.histogram._eps_line.label.textItem.toPlainText() == "ε 0.3"  # the line's label follows too
    dragged = []
    v.epsilonDragged.connect(dragged.append)
    v.set_epsilon(0.25)
    assert dragged == [] and v.histogram._eps_line.label.textItem.toPlainText() == "ε 0.25"


def test_clicking_a_histogram_bar_filters_the_rows(qtbot, result):
    v = ResultsView()
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    v.show_result(result)
    h = v.histogram
    counts = h.counts()
    i = int(np.argmax(counts))
    lo, hi = h.bin_range(i)
    x = (lo + (hi if math.isfinite(hi) else lo + 0.01)) / 2
    vb = h.getPlotItem().getViewBox()
    pos = h.mapFromScene(vb.mapViewToScene(QPointF(x, counts[i] / 2)))
    with qtbot.waitSignal(h.binSelected, timeout=2000):
        qtbot.mouseClick(h.viewport(), Qt.LeftButton, pos=QPoint(int(pos.x()), int(pos.y())))
    shown = [v.table_model.sample(r).distance for r in range(v.table_model.rowCount())]
    assert shown and all(d >= lo and d < hi for d in shown)
    assert v.filter_label.isVisible() and "show all" in v.filter_label.text() and "&lt;" in v.filter_label.text()
    v.show_all_rows()
    assert v.table_model.rowCount() == len(result.samples)


def test_hovering_a_token_shows_its_distance(qtbot, result):
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    from app.results.delegates import token_metrics

    v = ResultsView()
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    v.show_result(result)
    qtbot.waitExposed(v)
    index = v.table_model.index(0, SAMPLE)
    rect = v.table.visualRect(index)
    s = result.samples[0]
    cell = token_metrics(v.table.font()).cells(s, rect.left(), rect.top(), rect.height())[s.compared_position]
    event = QHelpEvent(QHelpEvent.ToolTip, cell.center(), v.table.viewport().mapToGlobal(cell.center()))
    QApplication.sendEvent(v.table.viewport(), event)
    assert f"D = {s.position_distances[s.compared_position]:.4f}" in QToolTip.text()
    QToolTip.hideText()


def test_bpe_tokens_get_cells_as_wide_as_their_text(qtbot, result):
    """A text model's tokens are pieces of several characters: each gets a cell its width, and
    the row is painted token by token (one glyph per cell would overlap them)."""
    from PySide6.QtGui import QFont, QImage, QPainter
    from PySide6.QtWidgets import QStyleOptionViewItem

    from app.results.delegates import SampleDelegate, token_metrics
    from engine.query.types import SampleResult

    pieces = ["<|endoftext|>", "When", "␣Mary", "␣and"]
    s = SampleResult(text="When Mary and", tokens=[0, 1, 2, 3], labels=pieces, multiplicity=1, distance=0.05,
                     compared_position=2, position_distances=[math.nan, 0.2, 0.05, 0.3], temperature=1.0,
                     noise=0.0, fact="", well_formed=True, pieces=pieces)
    tm = token_metrics(QFont())
    cells = tm.cells(s, 0, 0, 20)
    assert [c.width() for c in cells] == [(len(p) + 2 * (i == 2)) * tm.char_w + 6 for i, p in enumerate(pieces)]
    assert all(a.right() < b.left() for a, b in zip(cells, cells[1:]))  # no overlap
    image = QImage(600, 24, QImage.Format_RGB32)
    image.fill(0xFFFFFF)
    painter = QPainter(image)
    option = QStyleOptionViewItem()
    option.rect = image.rect()
    from dataclasses import replace

    model = ResultsTableModel()
    model.set_result(replace(result, samples=[s]))
    SampleDelegate().paint(painter, option, model.index(0, SAMPLE))
    painter.end()
    inked = [x for x in range(600) if any(image.pixel(x, y) != 0xFFFFFFFF for y in range(24))]
    assert inked and max(inked) > cells[-1].left()  # the last token is drawn, past the compared one


def test_the_preimage_summary_is_shown_above_the_rows_and_follows_epsilon(qtbot, result):
    from engine.explain.summary import summarize

    v = ResultsView()
    qtbot.addWidget(v)
    v.show_result(result)
    assert v.preimage.isVisibleTo(v)
    told = [f for f in summarize(result).features if f.verdict in ("shared", "partly")]
    assert told, "the fake's near copies share the query's letters"
    assert v.preimage.text().startswith("Within ε: ") and f"{told[0].name} = {told[0].query_value}" in v.preimage.text()
    wider = v.set_epsilon(0.6)
    first = [f for f in summarize(wider).features if f.verdict in ("shared", "partly")]
    assert (f"{first[0].name} = {first[0].query_value} in {first[0].share:.0%}" in v.preimage.text()) if first \
        else "no feature" in v.preimage.text()


def test_tiny_cosine_distances_read_as_numbers_not_all_zero(qtbot, result):
    """#31 item 8: with the cosine metric every top row read "0.000"."""
    import dataclasses

    from app.results.distance_text import distance_text

    tiny = [dataclasses.replace(s, distance=s.distance * 1e-4) for s in result.samples]
    cosine = dataclasses.replace(result, samples=tiny, epsilon=result.epsilon * 1e-4)
    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    view.show_result(cosine, cosine.epsilon)
    view.grab().save("/tmp/shots/cosine_distances.png")
    m = view.table.model()
    shown = [m.data(m.index(r, DISTANCE)) for r in range(min(5, m.rowCount()))]
    assert "0.000" not in shown and len(set(shown)) > 1, shown
    assert shown[0] == distance_text(tiny[0].distance)
    assert [distance_text(d) for d in (0.0, 0.1234, 0.00345, 3.4e-05, 1.23e-7)] == \
        ["0", "0.123", "0.0034", "3.4e-5", "1.2e-7"]
    assert max(len(distance_text(d)) for d in (9.999, 0.00999, 9.9e-9)) <= 6  # the column's text width
