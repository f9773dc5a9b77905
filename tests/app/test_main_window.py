"""The real main window driven as a user would, on the fake engine (pure UI behaviour)."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.main_window import MainWindow
from app.settings import SettingsStore
from engine.errors import StoreError
from tests.app.conftest import open_window


def run_and_wait(qtbot, w, trigger=None, timeout=10000):
    with qtbot.waitSignal(w.engine.runFinished, timeout=timeout) as blocker:
        (trigger or w.run_query)()
    return blocker.args[0]


def click_node(qtbot, w, short, pos):
    node = w.diagram.node(short, pos)
    w.diagram.centerOn(node)
    qtbot.mouseClick(w.diagram.viewport(), Qt.LeftButton,
                     pos=w.diagram.mapFromScene(node.sceneBoundingRect().center()))


def test_pick_model_type_query_click_token_and_node_then_run(qtbot, window, fake_engine):
    w = window
    index = next(i for i, e in enumerate(w.picker.entries()) if e.name == "fake-addition")
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=5000):
        w.picker.choose(index)
    assert w.diagram.node("a1.3", 0) is not None  # the addition model's 4 heads
    line = w.editor.combo.lineEdit()
    line.clear()
    qtbot.keyClicks(line, "B305+197=502")
    assert w.editor.tokens() is not None and w.diagram.node("x0.pre", 12) is not None
    qtbot.mouseClick(w.editor.strip, Qt.LeftButton, pos=w.editor.strip.cell_rect(9).center())
    assert w.target() == ("x1.post", 9)
    click_node(qtbot, w, "a1.2", 10)
    assert w.target() == ("a1.2", 10) and w.editor.strip.selected() == 10
    assert "a1.2" in w.run_bar.target.text() and "A2" in w.run_bar.target.text()
    line.setFocus()
    result = run_and_wait(qtbot, w, lambda: qtbot.keyClick(line, Qt.Key_Return, Qt.ControlModifier))
    assert (result.site_short, result.query_position, result.model) == ("a1.2", 10, "fake-addition")
    m = w.results.table_model
    assert m.rowCount() == len(result.samples) > 0
    d = [m.sample(r).distance for r in range(m.rowCount())]
    assert d == sorted(d)
    assert "candidates within epsilon" in w.results.summary.text()
    assert w.run_bar.progress.value() == result.candidates
    assert not w.run_bar.cancel_button.isEnabled()


def test_results_stream_in_before_the_run_ends(qtbot, fake_models):
    from tests.app.fakes import FakeEngine

    engine = FakeEngine(chunk_delay=0.03)
    w = open_window(qtbot, engine.backend())
    shown = []
    w.resultShown.connect(shown.append)
    run_and_wait(qtbot, w)
    assert any(not r.complete for r in shown)  # partial results were painted
    assert shown[-1].complete
    assert w.run_bar.progress.maximum() == 1024
    w.close()


def test_changing_epsilon_reranks_without_sampling_again(qtbot, window, fake_engine):
    w = window
    result = run_and_wait(qtbot, w)
    runs = fake_engine.runs
    before = w.results.table_model.in_epsilon_rows()
    w.options_bar.epsilon.setValue(0.3)
    assert fake_engine.runs == runs
    assert w.results.result().epsilon == 0.3
    assert w.results.table_model.in_epsilon_rows() > before
    assert "epsilon 0.3" in w.results.summary.text()
    assert w.results.result().samples[0].text == result.samples[0].text
    assert "ε 0.3" in w.history.list.item(0).text()


def test_cancel_stops_the_run_and_keeps_what_was_found(qtbot, fake_models):
    # how fast Cancel is answered is a goal measured against the real engine: benchmarks/ui_latency.py
    from tests.app.fakes import FakeEngine

    w = open_window(qtbot, FakeEngine(chunk_delay=0.1).backend())
    w.options_bar.candidates.setValue(8192)
    with qtbot.waitSignal(w.engine.runPartial, timeout=5000):
        w.run_query()
    with qtbot.waitSignal(w.engine.runFinished, timeout=10_000) as blocker:
        qtbot.mouseClick(w.run_bar.cancel_button, Qt.LeftButton)
    assert not blocker.args[0].complete
    assert "cancelled" in w.run_bar.progress.format()
    assert "stopped" in w.history.list.item(0).text()
    w.close()


def test_a_new_run_supersedes_the_running_one(qtbot, fake_models):
    from tests.app.fakes import FakeEngine

    w = open_window(qtbot, FakeEngine(chunk_delay=0.05).backend())
    w.options_bar.candidates.setValue(8192)
    w.run_query()
    w.options_bar.candidates.setValue(128)
    result = run_and_wait(qtbot, w)
    assert result.candidates == 128 and w.history.list.count() == 1
    w.close()


def test_history_reopens_a_past_run_instantly(qtbot, window, fake_engine):
    w = window
    first = run_and_wait(qtbot, w)
    w.editor.set_text("Bxxqxqqmqx|m:1")
    w.set_position(12)
    second = run_and_wait(qtbot, w)
    assert w.history.list.count() == 2
    runs = fake_engine.runs
    item = w.history.list.item(1)  # newest first: this is the first run
    qtbot.mouseClick(w.history.list.viewport(), Qt.LeftButton, pos=w.history.list.visualItemRect(item).center())
    assert fake_engine.runs == runs
    assert w.results.result().query == first.query != second.query
    assert w.editor.text() == "Baiaigiaaggi|g:3"
    assert w.target() == (first.site_short, first.query_position)


def test_pin_two_runs_to_compare_side_by_side(qtbot, window):
    w = window
    run_and_wait(qtbot, w)
    w.set_target("x0.mid", 14)
    run_and_wait(qtbot, w)
    w.history.list.setCurrentRow(0)
    qtbot.mouseClick(w.history.pin_right, Qt.LeftButton)
    w.history.list.setCurrentRow(1)
    qtbot.mouseClick(w.history.pin_left, Qt.LeftButton)
    assert w.tabs.currentWidget() is w.compare
    left, right = (side.result() for side in w.compare.sides)
    assert (left.site_short, right.site_short) == ("x1.post", "x0.mid")
    assert not w.compare.hint.isVisible()


def test_an_invalid_query_shows_the_message_and_cannot_run(qtbot, window, fake_engine):
    w = window
    line = w.editor.combo.lineEdit()
    line.clear()
    qtbot.keyClicks(line, "Bab!c|a:1")
    assert w.editor.message.isVisible()
    assert "'!'" in w.editor.message.text() and "allowed" in w.editor.message.text()
    assert not w.run_bar.run_button.isEnabled()
    runs = fake_engine.runs
    assert w.run_query() is None and fake_engine.runs == runs
    assert "not valid" in w.statusBar().currentMessage()


def test_engine_errors_become_messages_and_the_app_keeps_working(qtbot, window, fake_engine):
    w = window
    fake_engine.fail_run = ZeroDivisionError("division by zero")
    with qtbot.waitSignal(w.engine.runFailed, timeout=5000):
        w.run_query()
    assert "ZeroDivisionError: division by zero" in w.statusBar().currentMessage()
    assert "ZeroDivisionError" in w.results.summary.text()
    assert run_and_wait(qtbot, w).complete


def test_switching_model_moves_to_a_site_the_new_decoder_has(qtbot, window):
    w = window
    w.set_target("m1", 14)  # counting's decoder has m1; addition's does not
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=60000):
        w.choose_model(w.picker.find("fake-addition"))
    assert w.target()[0] != "m1" and w.diagram.is_trained(w.target()[0])
    assert "not trained on m1" in w.statusBar().currentMessage()
    assert w.run_bar.run_button.isEnabled()


def test_a_result_is_marked_when_the_options_change_after_it_ran(qtbot, window):
    w = window
    run_and_wait(qtbot, w)
    assert w.results.stale_label.isHidden()
    w.options_bar.seed.setValue(w.options_bar.seed.value() + 5)
    w.options_bar.candidates.setValue(256)
    assert not w.results.stale_label.isHidden()
    assert "seed" in w.results.stale_label.text() and "candidates" in w.results.stale_label.text()
    w.options_bar.epsilon.setValue(0.25)  # epsilon re-ranks at once: never stale
    assert "epsilon" not in w.results.stale_label.text()
    run_and_wait(qtbot, w)  # a new run with the new options is current again
    assert w.results.stale_label.isHidden()


def test_run_is_disabled_while_no_model_is_loaded(qtbot, window, fake_engine):
    w = window
    fake_engine.fail_load = StoreError("weights.safetensors: not a readable safetensors file")
    with qtbot.waitSignal(w.engine.modelFailed, timeout=60000):
        w.choose_model(w.picker.find("fake-addition"))
    assert not w.run_bar.run_button.isEnabled()
    assert "No model is loaded" in w.run_bar.run_button.toolTip()
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=60000):
        w.choose_model(w.picker.find("fake-counting"))
    assert w.run_bar.run_button.isEnabled()


def test_opening_a_folder_that_is_not_a_model_shows_why(qtbot, window, tmp_path):
    w = window
    assert not w.picker.open_path(str(tmp_path))
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "inversionview.json" in boxes[0].text()
    boxes[0].close()


def test_settings_are_saved_and_restored(qtbot, window):
    w = window
    w.editor.set_text("Bxxqxqqmqx|m:1")
    w.set_target("a1.0", 12)
    w.options_bar.epsilon.setValue(0.2)
    w.options_bar.seed.setValue(5)
    w.options_bar.same_label.setChecked(True)
    w.close()
    store = SettingsStore()
    s = store.load()
    assert (s.model, s.query, s.site, s.position, s.epsilon, s.seed, s.same_label) == \
        ("fake-counting", "Bxxqxqqmqx|m:1", "a1.0", 12, 0.2, 5, True)
    again = MainWindow(store, backend=w.engine._backend)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.engine.modelLoaded, timeout=5000):
        again.start()
    assert again.editor.text() == "Bxxqxqqmqx|m:1" and again.target() == ("a1.0", 12)
    assert again.options_bar.epsilon.value() == 0.2 and again.options_bar.same_label.isChecked()
    assert again.options_bar.options().same_label
    again.close()


def test_when_the_saved_model_has_gone_another_opens_with_its_own_defaults(qtbot, fake_engine, fake_models, tmp_path):
    """The saved query options were a text model's (1 - cosine, 768 candidates): the toy model
    opened instead starts from its own task's, as it would when chosen by hand."""
    from app.settings import AppSettings

    store = SettingsStore()
    store.save(AppSettings(model=str(tmp_path / "deleted-gpt2-folder"), query="When Mary and John went",
                           site="a1.0", position=12, metric="cosine", candidates=768, epsilon=0.3))
    w = MainWindow(store, backend=fake_engine.backend())
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=5000):
        entry = w.start()
    task = entry.load_task()
    assert (w.options_bar.metric_box.currentText(), w.options_bar.candidates.value()) == \
        (task.query_metric, task.query_candidates) == ("euclidean", 1024)
    assert w.editor.text() != "When Mary and John went" and w.editor.tokens() is not None  # the task's own example
    assert w.options_bar.epsilon.value() == 0.3  # epsilon is the user's, whatever the model
    w.close()


def test_a_corrupt_settings_file_is_set_aside_with_a_note(qtbot, fake_engine, fake_models):
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("\x00garbage")
    w = MainWindow(store, backend=fake_engine.backend())
    qtbot.addWidget(w)
    assert "moved to" in w.statusBar().currentMessage()
    assert list(store.path.parent.glob("settings.json.corrupt-*"))
    w.close()


def test_export_png_of_results_and_diagram(qtbot, window, tmp_path):
    w = window
    run_and_wait(qtbot, w)
    results = w.export_png("results", str(tmp_path / "results.png"))
    diagram = w.export_png("diagram", str(tmp_path / "diagram"))
    assert results.stat().st_size > 10000 and diagram.suffix == ".png" and diagram.stat().st_size > 10000


def test_the_chosen_position_follows_its_label_as_the_query_is_edited(qtbot, window):
    w = window
    assert w.editor.labels()[w.target()[1]] == ":"  # the counting default
    w.editor.set_text("Bxxqxqqmqxxx|m:1")
    assert w.editor.labels()[w.target()[1]] == ":" and w.target()[1] == 14


def test_a_failed_export_is_a_message_not_a_crash(qtbot, window, tmp_path):
    w = window
    assert w.export_csv(str(tmp_path / "x.csv")) is None  # nothing run yet
    assert "Nothing to export" in w.statusBar().currentMessage()
    run_and_wait(qtbot, w)
    assert w.export_csv(str(tmp_path / "missing" / "x.csv")) is None
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "does not exist" in boxes[0].text()
    boxes[0].close()
    assert w.export_csv(str(tmp_path / "ok")).name == "ok.csv"


def test_cancelling_a_run_that_waits_for_the_model_ends_it(qtbot, fake_models):
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from tests.app.fakes import FakeEngine

    store = SettingsStore()
    store.save(AppSettings(model="fake-counting"))
    w = MainWindow(store, backend=FakeEngine(load_delay=0.5).backend())
    qtbot.addWidget(w)
    w.start()
    assert w.engine.loading
    w.run_query()
    assert "waiting for the model" in w.run_bar.progress.format()
    with qtbot.waitSignal(w.engine.runCancelled, timeout=5000):
        w.cancel_query()
    assert not w.engine.running and "cancelled" in w.run_bar.progress.format()
    w.close()


def test_opening_a_model_folder_adds_and_loads_it(qtbot, window, tmp_path):
    import shutil

    w = window
    folder = tmp_path / "elsewhere"
    shutil.copytree(w.picker.find("fake-addition").path, folder)
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=5000) as blocker:
        assert w.picker.open_path(str(folder))
    assert blocker.args[0].key == str(folder)
    assert w.picker.current().source == "folder" and w.editor.labels()[1] == "F1"
    w.close()
    assert SettingsStore().load().model == str(folder)  # reopened from its folder next time


def test_dragging_the_epsilon_line_sets_epsilon(qtbot, window, fake_engine):
    w = window
    run_and_wait(qtbot, w)
    runs = fake_engine.runs
    line = w.results.histogram._eps_line
    line.setValue(0.25)
    line.sigPositionChangeFinished.emit(line)  # what releasing the dragged line does
    assert w.options_bar.epsilon.value() == 0.25
    assert w.results.result().epsilon == 0.25 and fake_engine.runs == runs


def test_a_chosen_schedule_is_used_and_a_bad_one_is_explained(qtbot, window):
    w = window
    w.options_bar.schedule_mode.setCurrentText("Chosen")
    w.options_bar.schedule.setText("1:0, 2:0.1")
    result = run_and_wait(qtbot, w)
    assert {s.temperature for s in result.samples} <= {1.0, 2.0}
    w.options_bar.schedule.setText("hot")
    assert w.run_query() is None
    assert "temperature:noise" in w.statusBar().currentMessage()


def test_a_window_larger_than_the_screen_is_fitted_inside_it(qtbot, fake_models):
    """What runs after the saved geometry is restored: Qt itself only moves a window that is
    off-screen, not one saved at another scale factor (QT_SCALE_FACTOR=2) that is too big."""
    from PySide6.QtGui import QGuiApplication

    from tests.app.fakes import FakeEngine

    room = QGuiApplication.primaryScreen().availableGeometry()
    w = MainWindow(SettingsStore(), backend=FakeEngine().backend(), save_settings=False)
    qtbot.addWidget(w)
    w.show()
    w.resize(room.width() * 3, room.height() * 3)
    w.move(room.right() + 500, room.bottom() + 500)
    assert w.width() > room.width()  # the platform let it be too big
    w._fit_to_screen(room)  # offscreen, the window is fitted only when told the screen's size
    least = w.minimumSizeHint().expandedTo(w.minimumSize())
    assert w.width() <= max(room.width(), least.width()) and w.height() <= max(room.height(), least.height())
    assert w.width() < room.width() * 3 and w.height() < room.height() * 3
    assert room.contains(w.frameGeometry().topLeft())  # the title bar is reachable
    w.close()


@pytest.mark.parametrize("width", [1480, 1100])
def test_opening_the_node_pane_keeps_the_diagram_legible(qtbot, window, width):
    from app.node_dock import DIAGRAM_LEGIBLE

    w = window
    w.resize(width, 900)
    qtbot.waitUntil(lambda: w.width() == width or w.width() == w.minimumSizeHint().width(), timeout=2000)
    click_node(qtbot, w, "x1.post", 14)
    qtbot.waitUntil(lambda: w.node_dock.isVisible(), timeout=2000)
    # the pane takes its width from the results, then from itself; it stays docked (tests/app/test_window_fit.py)
    qtbot.waitUntil(lambda: w.diagram_panel.width() >= min(DIAGRAM_LEGIBLE, w.split.width() - w.tabs.width() - 8),
                    timeout=2000)
    assert not w.node_dock.isFloating()
    assert w.tabs.width() >= w.tabs.minimumSizeHint().width()


def test_opened_folders_are_remembered_across_sessions(qtbot, fake_models, tmp_path):
    from tests.app.fakes import FakeEngine
    from tests.engine.store.test_hf_folders import paper_folder

    checkpoint = paper_folder(tmp_path / "paper-counting")  # a Hugging Face checkpoint of the counting task
    first = open_window(qtbot, FakeEngine().backend())
    assert first.picker.open_path(str(checkpoint))
    first.save_settings()
    first.close()
    second = MainWindow(SettingsStore(), backend=FakeEngine().backend())
    qtbot.addWidget(second)
    listed = [e for e in second.picker.entries() if e.source == "folder"]
    assert [e.path for e in listed] == [checkpoint] and listed[0].huggingface
    checkpoint.joinpath("config.json").unlink()  # a folder that no longer opens is skipped, not an error
    third = MainWindow(SettingsStore(), backend=FakeEngine().backend())
    qtbot.addWidget(third)
    assert not [e for e in third.picker.entries() if e.source == "folder"]
    second.close()
    third.close()


def test_a_site_can_be_chosen_with_the_keyboard(qtbot, window):
    w = window
    w.set_target("x0.pre", 5)
    w.diagram.setFocus()
    qtbot.keyClick(w.diagram, Qt.Key_Right)
    assert w.target() == ("x0.pre", 6)
    qtbot.keyClick(w.diagram, Qt.Key_Up)
    up = w.target()
    assert up[1] == 6 and up[0] != "x0.pre"  # the node drawn above x0.pre at the same position
    qtbot.keyClick(w.diagram, Qt.Key_Down)
    assert w.target() == ("x0.pre", 6)
    qtbot.keyClick(w.diagram, Qt.Key_Down)  # nothing below the embeddings: stays
    assert w.target() == ("x0.pre", 6)
    assert w.node_dock.isHidden()  # moving does not open the pane
    qtbot.keyClick(w.diagram, Qt.Key_Return)
    qtbot.waitUntil(lambda: w.node_dock.isVisible(), timeout=2000)  # Enter does, like a click
    assert w.target() == ("x0.pre", 6)
