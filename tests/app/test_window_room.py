"""#31 item 8: the window in little room: a small or doubled screen, 1280 x 720, the Compare tab,
and Fit diagram (Ctrl+0)."""
from PySide6.QtCore import QRect, QRectF
from PySide6.QtWidgets import QApplication

from app.diagram.fit import gutter_width
from app.diagram.view import ROW_NAME_FONT
from tests.app.conftest import open_window


def every_position_in_sight(d) -> list[int]:
    """Positions whose column of nodes is not wholly inside the view, right of the row names."""
    view = QRectF(d.viewport().rect())
    gutter = gutter_width(ROW_NAME_FONT, d._layout.row_names)
    missing = []
    for pos in range(len(d._tokens)):
        for short in ("x0.pre", "x1.post"):
            r = d.mapFromScene(d.node(short, pos).sceneBoundingRect()).boundingRect()
            if not (view.contains(QRectF(r)) and r.left() >= gutter):  # no row name over it either
                missing.append(pos)
                break
    return missing


def addition_window(qtbot, fake_engine, size=(1480, 920)):
    w = open_window(qtbot, fake_engine.backend(), model="fake-addition", query="B615+861=1476E")
    w.resize(*size)
    qtbot.waitUntil(lambda: len(w.diagram._tokens) == 14 and not w.diagram.columns_pending(), timeout=5000)
    return w


def test_fit_diagram_shows_every_position(qtbot, fake_engine, fake_models):
    w = addition_window(qtbot, fake_engine)
    d = w.diagram
    qtbot.waitUntil(lambda: not d._refit.isActive(), timeout=2000)
    assert every_position_in_sight(d)  # the automatic fit stays legible: some positions scroll
    fit = next(a for a in w.findChildren(type(w.menuBar().actions()[0])) if a.text() == "&Fit diagram")
    assert fit.shortcut().toString() == "Ctrl+0"
    fit.trigger()
    assert every_position_in_sight(d) == []
    w.resize(1100, 800)  # and it stays fitted as the window changes
    qtbot.waitUntil(lambda: every_position_in_sight(d) == [] and not d._refit.isActive(), timeout=3000)
    assert every_position_in_sight(d) == []
    w.grab().save("/tmp/shots/after/fit_diagram.png")
    w.close()


def test_the_compare_tab_keeps_every_position_of_the_narrowed_diagram_in_sight(qtbot, fake_engine, fake_models):
    w = addition_window(qtbot, fake_engine)
    d = w.diagram
    w.tabs.setCurrentWidget(w.compare)
    qtbot.waitUntil(lambda: every_position_in_sight(d) == [] and not d._refit.isActive(), timeout=3000)
    assert every_position_in_sight(d) == []  # 14 of 14, no row name over a node
    assert w.compare.width() > w.diagram_panel.width()  # the comparison still gets the room
    w.grab().save("/tmp/shots/after/compare_tab.png")
    w.tabs.setCurrentIndex(0)  # back: the diagram fits as before (legible, scrolling to the selection)
    qtbot.waitUntil(lambda: not d.fits_all(), timeout=2000)
    w.close()


def test_at_1280_by_720_the_results_show_rows_to_read(qtbot, fake_engine, fake_models):
    w = addition_window(qtbot, fake_engine, size=(1280, 720))
    with qtbot.waitSignal(w.engine.runFinished, timeout=20000):
        w.run_query()
    table = w.results.table
    qtbot.waitUntil(lambda: table.viewport().height() >= 4 * table.rowHeight(0), timeout=3000)
    assert w.results.histogram.height() >= 60  # the histogram stays readable
    assert w.history.list.viewport().height() >= 30  # a history entry shows
    w.grab().save("/tmp/shots/after/results_1280x720.png")
    w.close()


def test_the_minimum_size_fits_a_doubled_screen(qtbot, fake_engine, fake_models):
    """QT_SCALE_FACTOR=2 on a 1920 x 1080 screen leaves 960 x 520 logical pixels: the window opened
    at its minimum size, 1046 x 654, larger than the screen."""
    w = open_window(qtbot, fake_engine.backend(), model="fake-addition")
    room = QRect(0, 0, 960, 520)
    assert w.minimumSizeHint().width() > room.width()  # what the screen cannot hold
    w._fit_to_screen(room)  # offscreen, the window is fitted only when told the screen's size
    QApplication.processEvents()
    assert w.minimumWidth() <= room.width() and w.minimumHeight() <= room.height()
    assert w.width() <= room.width() and w.height() <= room.height()
    assert room.contains(w.frameGeometry())
    # nothing is cut off: what does not fit scrolls
    assert w.run_bar.isVisibleTo(w) and w.centralWidget().objectName() == "fitScroll"
    w.resize(1480, 920)  # on a large screen it lays out as before, with no scroll bars
    area = w.centralWidget()
    qtbot.waitUntil(lambda: w.height() == 920 and area.widget().height() == area.viewport().height(), timeout=3000)
    assert not area.horizontalScrollBar().isVisible() and not area.verticalScrollBar().isVisible()
    w.close()
