"""#31 item 8: long samples and facts are elided with a mark, the compared token kept in sight and the
whole text in a tooltip; a malformed sample is struck through, not red (red means negative)."""
import math
from dataclasses import replace

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from app.results.table_model import FACT, RANK, SAMPLE
from app.results.view import ResultsView
from app.style import error_text
from engine.query.types import QueryOptions
from tests.app.fakes import FakeEngine

IOI = ["<|endoftext|>", "After", "␣Erin", "␣and", "␣Justin", "␣went", "␣to", "␣the", "␣house", ",", "␣Erin",
       "␣gave", "␣a", "␣ring", "␣to", "␣Justin"]


@pytest.fixture
def result(fake_models):
    engine = FakeEngine()
    inv = engine.load_inverter("fake-counting")
    return engine.run_query(inv, "Bvvzccvczvvvzvcvc|v:8", "x1.post", ":", QueryOptions(candidates=64, seed=3))


def sample(pieces, compared, well_formed=True, fact="IO ␣Justin, S ␣Erin", rank=1):
    from engine.query.types import SampleResult

    n = len(pieces)
    return SampleResult(text="".join(pieces), tokens=list(range(n)), labels=list(pieces), multiplicity=1,
                        distance=0.05, compared_position=compared, position_distances=[0.1] * n, temperature=1.0,
                        noise=0.0, fact=fact, well_formed=well_formed, pieces=list(pieces), rank=rank)


def shown(qtbot, result, samples, width=700, compact=False):
    v = ResultsView(compact=compact)
    qtbot.addWidget(v)
    v.resize(width, 500)
    v.show()
    qtbot.waitExposed(v)
    v.show_result(replace(result, samples=samples, task="ioi"))
    return v


def tooltips_along(qtbot, v, row: int, col: int) -> list[str]:
    """Every tooltip met moving the mouse along a cell, left to right (a user hovering it)."""
    rect = v.table.visualRect(v.table_model.index(row, col))
    texts = []
    for x in range(rect.left() + 1, min(rect.right(), v.table.viewport().width()), 3):
        QToolTip.hideText()
        point = QPoint(x, rect.center().y())
        QApplication.sendEvent(v.table.viewport(),
                               QHelpEvent(QHelpEvent.ToolTip, point, v.table.viewport().mapToGlobal(point)))
        if QToolTip.isVisible() and (not texts or texts[-1] != QToolTip.text()):
            texts.append(QToolTip.text())
    QToolTip.hideText()
    return texts


def test_a_long_sample_keeps_its_compared_token_and_answer_in_sight(qtbot, result):
    v = shown(qtbot, result, [sample(IOI, compared=14)])
    texts = tooltips_along(qtbot, v, 0, SAMPLE)
    assert any("position 14" in t and "(compared)" in t for t in texts)  # the END token: visible
    assert any(t.startswith("position 15") for t in texts)  # and the answer after it
    assert any(t.startswith("position 1 ") for t in texts)  # the start too, as far as it goes
    whole = [t for t in texts if t.startswith("The whole sample")]
    assert whole and "After␣Erin␣and␣Justin␣went" in whole[0] and "(␣to)␣Justin" in whole[0]  # "…": what it hides
    v.grab().save("/tmp/shots/after/long_sample.png")


def test_a_sample_that_fits_is_not_elided(qtbot, result):
    v = shown(qtbot, result, [sample(IOI[:6], compared=5)], width=900)
    texts = tooltips_along(qtbot, v, 0, SAMPLE)
    assert [t.split(" ")[1] for t in texts if t.startswith("position")] == [str(i) for i in range(6)]
    assert not any(t.startswith("The whole sample") for t in texts)


def test_a_long_fact_is_shown_whole_or_elided_with_its_text_in_the_tooltip(qtbot, result):
    v = shown(qtbot, result, [sample(IOI, compared=14)], width=900)
    fm = v.table.fontMetrics()
    assert v.table.columnWidth(FACT) >= fm.horizontalAdvance("IO ␣Justin, S ␣Erin") + 8  # room for the whole fact
    narrow = shown(qtbot, result, [sample(IOI, compared=14, fact="IO ␣Christopher, S ␣Alexandra")], width=420,
                   compact=True)
    tip = narrow.table_model.data(narrow.table_model.index(0, FACT), Qt.ToolTipRole)
    assert "IO ␣Christopher, S ␣Alexandra" in tip


def reddish(c: QColor) -> bool:
    return c.red() > 140 and c.green() < 110 and c.blue() < 110


def test_a_malformed_sample_is_struck_through_not_red(qtbot, result):
    """Red is the negative prob_diff's colour; malformed rows used red text as well."""
    rows = [sample(list("Bab|a:2E"), 6, rank=1), sample(list("Bab|a:9E"), 6, well_formed=False, rank=2)]
    v = shown(qtbot, result, rows, width=700)
    image = v.table.viewport().grab().toImage()
    red = error_text(v.table)
    for row, bad in ((0, False), (1, True)):
        rect = v.table.visualRect(v.table_model.index(row, SAMPLE))
        pixels = [image.pixelColor(x, y) for x in range(rect.left(), rect.left() + 120)
                  for y in range(rect.top(), rect.bottom())]
        assert not any(reddish(c) or c.rgb() == red.rgb() for c in pixels)  # no red ink at all
        middle = [image.pixelColor(x, rect.center().y()) for x in range(rect.left() + 4, rect.left() + 100)]
        ink = v.table.palette().color(v.table.foregroundRole())
        struck = sum(abs(c.lightness() - ink.lightness()) < 60 for c in middle) > 60
        assert struck == bad  # a line through the tokens of the malformed one only
    tips = tooltips_along(qtbot, v, 1, SAMPLE)
    assert any("malformed" in t for t in tips)
    assert "malformed" in v.table_model.data(v.table_model.index(1, RANK), Qt.ToolTipRole)
    assert "struck through" in v.legend.text()
    v.grab().save("/tmp/shots/after/malformed_struck.png")
    assert math.isfinite(rows[0].distance)


def test_an_elided_sample_shows_the_tokens_before_its_compared_token_too(qtbot, result):
    """Compared at the last token (IOI at END + 1): the middle goes, the tokens leading up to it stay."""
    v = shown(qtbot, result, [sample(IOI, compared=15)], width=700)
    texts = [t.split(" ")[1] for t in tooltips_along(qtbot, v, 0, SAMPLE) if t.startswith("position")]
    assert texts[0] == "0" and texts[-1] == "15"
    assert "14" in texts and "13" in texts  # "␣ring ␣to (␣Justin)": what leads up to the compared token
