"""The local search's settings in the window: chains, temperature and the grammar filter beside the
sampler, kept tokens chosen on the token strip (right-click), all reaching the engine's QueryOptions
and the settings file."""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from app.settings import SettingsStore
from tests.app.conftest import open_window


def choose(box, value: str) -> None:
    box.setCurrentIndex(box.findData(value))


def test_the_search_settings_and_kept_tokens_reach_the_query(qtbot, fake_engine, fake_models):
    w = open_window(qtbot, fake_engine.backend())
    bar = w.options_bar
    choose(bar.sampler_box, "decoder")
    assert not bar.search_button.isVisibleTo(w)  # the decoder has no such settings
    choose(bar.sampler_box, "search")
    assert bar.search_button.isVisibleTo(w)  # its menu holds chains, temperature and the grammar filter
    assert bar.chains in bar.search_button.menu().findChildren(type(bar.chains))
    bar.chains.setValue(8)
    bar.search_temperature.setValue(0.5)
    bar.grammar.setChecked(False)
    strip = w.editor.strip
    for i in (3, 5, 3):  # 3 kept, 5 kept, 3 let go
        qtbot.mouseClick(strip, Qt.RightButton, pos=strip.cell_rect(i).center())
    assert w.editor.kept() == (5,) and strip.selected() != 5  # a right-click keeps, it does not select
    with qtbot.waitSignal(w.engine.runFinished, timeout=30_000):
        w.run_query()
    seen = fake_engine.options_seen[-1]
    got = (seen.sampler, seen.chains, seen.search_temperature, seen.grammar, seen.keep)
    assert got == ("search", 8, 0.5, False, (5,))

    w.editor.set_text("Bvvzccvczvvvzvcvc|v:8")  # another query: its tokens are kept afresh
    assert w.editor.kept() == ()
    w.save_settings()
    w.close()
    again = MainWindow(SettingsStore(), backend=fake_engine.backend())
    qtbot.addWidget(again)
    assert again.options_bar.search_settings() == (8, 0.5, False)
    again.close()


def test_a_kept_token_is_marked_on_the_strip(qtbot, fake_engine, fake_models):
    w = open_window(qtbot, fake_engine.backend())
    strip = w.editor.strip
    before = strip.grab().toImage()
    qtbot.mouseClick(strip, Qt.RightButton, pos=strip.cell_rect(2).center())
    after = strip.grab().toImage()
    r = strip.cell_rect(2)
    changed = [(x, y) for x in range(r.left(), r.right()) for y in range(r.top(), r.bottom())
               if before.pixel(x, y) != after.pixel(x, y)]
    other = strip.cell_rect(6)
    assert changed  # the kept cell is drawn differently
    assert all(before.pixel(QPoint(x, y)) == after.pixel(QPoint(x, y))
               for x in range(other.left(), other.right()) for y in range(other.top(), other.bottom()))
    w.close()
