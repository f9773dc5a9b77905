"""Issue #31, item 5: words that no longer hold are not left on screen: a map message about a
model without a decoder, a site note while the model loads, another model's results, a Run that
can only fail, an ETA after the run, two different run times, and a paste cut without a word."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from engine.decoder.progress import DecoderProgress
from tests.app.conftest import open_window
from tests.app.fakes import FakeEngine
from tests.app.test_model_reopen import DecoderOptionalEngine, folder_without_decoder, train_decoder_into


def run_and_wait(qtbot, w, timeout=10000):
    with qtbot.waitSignal(w.engine.runFinished, timeout=timeout) as blocker:
        w.run_query()
    return blocker.args[0]


def load(qtbot, w, name):
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=10000):
        w.choose_model(w.picker.find(name))


def test_cannot_map_goes_once_the_model_has_a_decoder(qtbot, fake_models, tmp_path):
    w = open_window(qtbot, DecoderOptionalEngine().backend())
    folder = folder_without_decoder(tmp_path / "mine")
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=10000):
        w.picker.open_path(str(folder))
    w.map_action.trigger()
    legend = w.diagram_panel.map_bar.legend
    assert "Cannot map" in legend.text() and legend.isVisibleTo(w)
    train_decoder_into(folder)
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=10000):
        w.picker.open_path(str(folder))
    assert "Cannot map" not in legend.text() and not legend.isVisibleTo(w)
    w.close()


def test_no_untrained_site_note_while_the_model_loads(qtbot, window):
    w = window
    w.set_target("m1", 14)  # counting's decoder knows m1, addition's does not
    w.choose_model(w.picker.find("fake-addition"))  # its load is answered only when the event loop runs
    assert w.engine.loading and "not trained" not in w.run_bar.target.text()
    qtbot.waitSignal(w.engine.modelLoaded, timeout=10000).wait()


def test_run_is_disabled_with_a_reason_on_a_site_the_decoder_was_not_trained_on(qtbot, window, fake_engine):
    """Only with the decoder asked for: under auto the local search runs there (issue #27)."""
    w = window
    load(qtbot, w, "fake-addition")
    w.options_bar.sampler_box.setCurrentIndex(w.options_bar.sampler_box.findData("decoder"))
    w.set_target("m1", 5)  # addition's paper sites have no MLP outputs
    assert "not trained on m1" in w.run_bar.target.text()
    assert not w.run_bar.run_button.isEnabled()
    assert "not trained on m1" in w.run_bar.run_button.toolTip()
    runs = fake_engine.runs
    assert w.run_query() is None and fake_engine.runs == runs  # Ctrl+Enter does not start it either
    assert "not trained on m1" in w.statusBar().currentMessage()
    w.set_target("a1.2", 5)
    assert w.run_bar.run_button.isEnabled() and "not trained" not in w.run_bar.run_button.toolTip()


def test_another_models_results_say_the_model_changed(qtbot, window):
    w = window
    run_and_wait(qtbot, w)
    load(qtbot, w, "fake-addition")
    stale = w.results.stale_label
    assert stale.isVisibleTo(w) and "Model changed" in stale.text()
    assert "fake-counting" in stale.text() and "fake-addition is open" in stale.text()
    run_and_wait(qtbot, w)
    assert not stale.isVisibleTo(w)


def test_cancel_clears_the_eta_and_a_finished_run_shows_one_time(qtbot, fake_models):
    w = open_window(qtbot, FakeEngine(chunk_delay=0.05).backend())
    w.options_bar.candidates.setValue(8192)
    w.run_query()
    qtbot.waitUntil(lambda: w.run_bar.eta.text().startswith("ETA"), timeout=10000)
    with qtbot.waitSignal(w.engine.runFinished, timeout=10000):
        qtbot.mouseClick(w.run_bar.cancel_button, Qt.LeftButton)
    assert w.run_bar.eta.text() == "" and "cancelled" in w.run_bar.progress.format()

    w.options_bar.candidates.setValue(256)
    result = run_and_wait(qtbot, w)
    seconds = f"{result.seconds:.1f} s"
    assert seconds in w.run_bar.progress.format() and seconds in w.results.summary.text()
    assert w.run_bar.eta.text() in ("", seconds)  # no second, different figure beside it
    w.close()


def test_a_stopped_training_run_says_no_time_is_left(qtbot, app_dirs, request):
    from app.training.dialog import TrainDialog

    d = TrainDialog()
    qtbot.addWidget(d)
    request.addfinalizer(lambda: d.shutdown())  # its training thread ends with the test, pass or fail
    p = DecoderProgress(seconds=20.0, budget=60.0, loss=2.5, step=40, pairs=5120)  # what the engine sends
    d.client.progress.emit(p)
    assert "0:40 left" in d.time_label.text()
    d.client.stopped.emit("cancel", p)
    assert "left" not in d.time_label.text() and "stopped" in d.time_label.text()


def test_a_paste_longer_than_the_field_says_it_was_cut_and_counts_right(qtbot, window):
    w = window
    QGuiApplication.clipboard().setText("ab" * 50_008)  # 100,016 characters
    line = w.editor.combo.lineEdit()
    line.selectAll()
    line.setFocus()
    qtbot.keyClick(line, Qt.Key_V, Qt.ControlModifier)
    kept = len(w.editor.text())
    assert kept < 100_016
    message = w.editor.message.text()
    assert f"cut to its first {kept:,} characters of the 100,016 pasted" in message
    assert f"{kept + 2:,} tokens with BOS and EOS (a token per character)" in message
    assert not w.run_bar.run_button.isEnabled()
