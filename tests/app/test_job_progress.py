"""Issue #31, item 6: the map's and the causal check's progress bars show their whole text
("105 / 1,332 nodes", not "105 / 13!") and the time left, as a long patching run needs."""
from __future__ import annotations

import pytest

import app.progress
from app.patching.panel import PatchPanel


@pytest.fixture
def clock(monkeypatch):
    """A clock that moves one second each time it is read."""
    t = [0.0]

    def tick():
        t[0] += 1.0
        return t[0]

    monkeypatch.setattr(app.progress, "now", tick)
    return t


def whole_text_fits(bar) -> bool:
    return bar.fontMetrics().horizontalAdvance(bar.text()) + 16 <= bar.width()


def test_the_causal_checks_bar_shows_its_whole_text_and_the_time_left(qtbot, clock):
    panel = PatchPanel()
    qtbot.addWidget(panel)
    panel.set_state("running")
    panel.resize(700, 400)  # about its width in the window's Causal check tab
    panel.show()
    panel.set_progress(5, 1332)  # t = 1: the first batch, no rate yet
    assert panel.progress.text() == "5 / 1,332 nodes"
    panel.set_progress(105, 1332)  # t = 2: 100 nodes a second
    # the bar widens for the time left as its row is laid out again
    qtbot.waitUntil(lambda: panel.progress.text() == "105 / 1,332 nodes · about 0:12 left", timeout=5000)
    assert whole_text_fits(panel.progress)
    panel.set_progress(1332, 1332)
    assert "left" not in panel.progress.text() and whole_text_fits(panel.progress)


def test_the_maps_bar_shows_its_whole_text_and_the_time_left(qtbot, window, clock):
    bar = window.diagram_panel.map_bar
    seen = []  # the bar as each node's reply left it
    window.engine.jobItem.connect(lambda *_: seen.append((bar.progress.text(), whole_text_fits(bar.progress))))
    with qtbot.waitSignal(window.map.mapFinished, timeout=60000):
        bar.map_button.click()
    total = len(window.map.rows)
    assert seen[0] == (f"1 / {total:,} nodes", True)
    assert all(fits for _, fits in seen)
    assert all("about" in text and text.endswith(" left") for text, _ in seen[1:-1])
