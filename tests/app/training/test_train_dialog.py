"""File > Train decoder…: real (tiny) training runs driven through the dialog, and the curve widget.

Each run trains a d_model 32, 1-layer decoder for the bundled addition model's probed weights
for a few seconds, with small quality checks, so every step a user takes is real: copying the
base, the training engine, live curves, pause / resume / cancel with the checkpoint, finishing
into a new user model that the main window's picker lists. Waits are on signals and conditions,
never on sleeps.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.training.curve import NO_QUALITY_NOTE, TrainingCurve, TrainingRecord, read_record
from app.training.dialog import TrainDialog
from app.training.form import decoder_size
from engine.store.folders import BUNDLED_DIR, user_models_dir

ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT_MS = 240_000  # the first run imports torch and transformer_lens on a busy 2-core machine


def make_tiny(d: TrainDialog, minutes: float, base: str = "addition", name: str | None = None) -> None:
    """A decoder small and quick enough for a test, with small quality checks every ~2 s."""
    assert d.form.select_base(base)
    d.form.d_model.addItem("32", 32)
    d.form.d_model.setCurrentIndex(d.form.d_model.count() - 1)
    d.form.layers.setValue(1)
    d.form.minutes.setValue(minutes)
    d.form.check_every.setValue(0.03)  # 1.8 s
    d.form.extra_settings = {"check_queries": 8, "batch_size": 32}
    if name is not None:
        d.form.set_name(name)


def checkpoint_step(path: Path) -> int:
    from engine.store.safefiles import load_tensors

    return load_tensors(path)[1]["step"]


@pytest.fixture
def tiny_base(app_dirs):
    """A user model with the bundled addition model's probed weights and a random d32, 1-layer decoder."""
    from engine.decoder.files import save_decoder
    from engine.decoder.job import new_user_model
    from engine.decoder.train import DecoderTrainConfig, new_decoder
    from engine.probed.sites import paper_sites
    from engine.store.folders import find_model, load_probed

    entry = new_user_model(find_model("addition"), "tiny-addition")
    probed = load_probed(entry)
    sites = paper_sites(probed.config)
    decoder = new_decoder(probed, DecoderTrainConfig(minutes=0, d_model=32, n_layers=1, n_heads=2), sites)
    save_decoder(entry.path, decoder.eval(), [s.id for s in sites], {"command": "tests (random, untrained)"})
    return entry.path


@pytest.fixture
def dialog(qtbot):
    from engine.server.backend import real_backend

    d = TrainDialog(backend=real_backend())  # the training engine in a thread, through the same protocol
    qtbot.addWidget(d)
    d.show()
    yield d
    d.shutdown()
    qtbot.waitUntil(lambda: not d.client.engine_alive, timeout=RUN_TIMEOUT_MS)


def test_a_tiny_run_from_the_menu_draws_curves_and_joins_the_picker(qtbot, window, tiny_base):
    window.train_decoder_action.trigger()
    d = window.train_dialog
    assert d.isVisible() and not d.isModal()
    make_tiny(d, minutes=0.05, base="tiny-addition")
    assert d.form.name.text() == "tiny-addition-d32-0.05min"  # the default name follows base, size and time
    assert d.form.init_base.isEnabled()  # the base's decoder has this size
    d.form.init_base.setChecked(True)
    with qtbot.waitSignal(d.client.finished, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(d.start_button, Qt.LeftButton)
    assert d.state == "done" and "Done: tiny-addition-d32-0.05min" in d.status.text()
    assert d.curve.loss_points() > 0
    assert d.curve.quality_points() >= 2  # the check at the start and the one at the end
    assert d.curve.site_curves and "a1.3" in d.curve.legend.text()  # each site's line, labelled
    assert d.check_label.text().startswith("Last check at")
    assert d.count_label.text().startswith("step ") and d.progress_bar.value() == d.progress_bar.maximum()

    folder = user_models_dir() / "tiny-addition-d32-0.05min"
    assert (folder / "decoder.safetensors").is_file() and (folder / "CARD.md").is_file()
    training = json.loads((folder / "inversionview.json").read_text())["decoder"]["training"]
    assert training["init_from"] == "tiny-addition" and training["quality"]
    assert "train-decoder addition --model tiny-addition-d32-0.05min" in training["command"]
    assert "tiny-addition-d32-0.05min" in [e.name for e in window.picker.entries()]

    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        qtbot.mouseClick(d.use_button, Qt.LeftButton)
    assert window.picker.current().name == "tiny-addition-d32-0.05min"
    window.close()
    assert not d.client.running


def test_pause_keeps_the_checkpoint_resume_continues_cancel_keeps_it_and_start_resumes(qtbot, dialog):
    d = dialog
    make_tiny(d, minutes=2.0, name="pause-me")  # far longer than the test lets it run
    d.start()
    qtbot.waitUntil(lambda: d.step() >= 3, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(d.client.stopped, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(d.pause_button, Qt.LeftButton)
    checkpoint = d._start.checkpoint
    paused = d.step()
    assert d.state == "paused" and d.pause_button.text() == "Resume" and d.pause_button.isEnabled()
    assert checkpoint.is_file() and checkpoint_step(checkpoint) == paused
    assert f"Paused at step {paused:,}" in d.status.text()
    assert d.curve.loss_points() > 0

    with qtbot.waitSignal(d.client.began, timeout=RUN_TIMEOUT_MS) as began:
        qtbot.mouseClick(d.pause_button, Qt.LeftButton)  # Resume
    assert began.args[0].resumed_step == paused
    qtbot.waitUntil(lambda: d.step() > paused, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(d.client.stopped, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(d.cancel_button, Qt.LeftButton)
    cancelled = d.step()
    assert d.state == "idle" and d.start_button.isEnabled() and not d.pause_button.isEnabled()
    assert checkpoint.is_file() and checkpoint_step(checkpoint) == cancelled > paused
    assert "Start with the name 'pause-me' resumes" in d.status.text() and str(checkpoint) in d.status.text()

    # a later Start with the same name resumes from the checkpoint, curve included
    with qtbot.waitSignal(d.client.began, timeout=RUN_TIMEOUT_MS) as began:
        assert d.start()
    assert began.args[0].resumed_step == cancelled
    assert d.curve.quality_points() >= 1  # the checkpoint's checks, drawn again
    assert "Resuming pause-me from step" in d.status.text()
    with qtbot.waitSignal(d.client.stopped, timeout=RUN_TIMEOUT_MS):
        d.cancel()


def test_a_stopped_run_resumes_only_at_its_own_size(qtbot, dialog):
    d = dialog
    make_tiny(d, minutes=2.0, name="sized")
    d.start()
    qtbot.waitUntil(lambda: d.step() >= 1, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(d.client.stopped, timeout=RUN_TIMEOUT_MS):
        d.cancel()
    d.form.layers.setValue(2)
    assert d.form.model_name() == "sized"
    with qtbot.waitSignal(d.client.failed, timeout=RUN_TIMEOUT_MS):
        d.start()
    assert "a stopped run of 'sized' has layers 1, not 2" in d.status.text() and d.state == "idle"


def test_a_bad_name_shows_an_error_in_the_dialog_and_starts_nothing(qtbot, dialog):
    d = dialog
    assert not user_models_dir().exists()
    make_tiny(d, minutes=0.05, name="bad name!")
    with qtbot.waitSignal(d.client.failed, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(d.start_button, Qt.LeftButton)
    assert "not allowed" in d.status.text() and "color" in d.status.styleSheet()
    assert d.state == "idle" and d.start_button.isEnabled() and not d.client.running
    assert not user_models_dir().exists()
    assert d.curve.loss_points() == 0

    d.form.set_name("counting")  # a bundled model's name: refused before anything is sent
    assert not d.start()
    assert "bundled model" in d.status.text() and not d.client.running


def test_a_finished_model_is_never_trained_over(qtbot, tiny_base, dialog):
    d = dialog
    d.form.refresh_bases()
    make_tiny(d, minutes=0.05, base="tiny-addition", name="tiny-addition")  # its own name: it has a decoder
    before = (tiny_base / "decoder.safetensors").read_bytes()
    with qtbot.waitSignal(d.client.failed, timeout=RUN_TIMEOUT_MS):
        d.start()
    assert "already has a trained decoder" in d.status.text() and d.state == "idle"
    assert (tiny_base / "decoder.safetensors").read_bytes() == before


def test_the_dialog_gives_the_command_for_a_model_it_cannot_train(qtbot, dialog, tmp_path):
    """#31 item 7: an opened folder or a hub model is not in the base list and there is no corpus
    field; the dialog said nothing about the command line."""
    from PySide6.QtGui import QGuiApplication

    from engine.store.folders import find_model, open_folder

    d = dialog
    note = d.cli_note
    assert note.isVisible() and "command line" in note.label.text()
    assert note.command.text() == "python main.py train-decoder --model FOLDER --corpus FILE"
    opened = tmp_path / "my model"
    import shutil

    shutil.copytree(find_model("counting").path, opened)
    entry = open_folder(opened)  # as File > Open model folder… opens it
    assert not d.choose_base(entry)  # not a base the dialog can train
    assert note.command.text() == f"python main.py train-decoder --model '{opened}' --corpus FILE"
    qtbot.mouseClick(note.copy_button, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == note.command.text()
    assert d.choose_base(find_model("addition"))  # a bundled one is chosen in the form as before
    d.grab().save("/tmp/shots/train_dialog.png")


def test_start_on_a_finished_name_asks_before_training_over_it(qtbot, dialog):
    """#31 item 7: a finished run leaves its checkpoint, and Start with its name resumed it and
    saved the decoder again without a word."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    d = dialog
    make_tiny(d, minutes=0.02, name="finished-once")
    with qtbot.waitSignal(d.client.finished, timeout=RUN_TIMEOUT_MS):
        d.start()
    decoder = user_models_dir() / "finished-once" / "decoder.safetensors"
    before = decoder.read_bytes()

    def question():
        boxes = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.objectName() == "retrainQuestion" and w.isVisible()]
        return boxes[0] if boxes else None

    qtbot.mouseClick(d.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: question() is not None, timeout=5000)
    box = question()
    assert "already has a trained decoder" in box.text() and "replacing" in box.text()
    box.grab().save("/tmp/shots/retrain_question.png")
    assert not d.client.running and d.state == "done"  # nothing started while it asks
    keep = next(b for b in box.buttons() if b.text() == "Keep it")
    qtbot.mouseClick(keep, Qt.LeftButton)
    qtbot.waitUntil(lambda: question() is None, timeout=5000)
    assert not d.client.running and decoder.read_bytes() == before

    qtbot.mouseClick(d.start_button, Qt.LeftButton)  # asked again; this time the user goes on
    qtbot.waitUntil(lambda: question() is not None, timeout=5000)
    go = next(b for b in question().buttons() if b.text() == "Continue and replace")
    with qtbot.waitSignal(d.client.began, timeout=RUN_TIMEOUT_MS) as began:
        qtbot.mouseClick(go, Qt.LeftButton)
    assert began.args[0].resumed_step > 0
    qtbot.waitUntil(lambda: not d.client.running, timeout=RUN_TIMEOUT_MS)


def test_starting_from_the_base_decoder_needs_the_same_size(qtbot, fake_models, dialog):
    d = dialog
    assert d.form.select_base("addition")  # bundled: d_model 128, 2 layers
    bases = [d.form.base.itemData(i).name for i in range(d.form.base.count())]
    assert "addition" in bases and "fake-counting" not in bases  # only models with probed weights to copy
    d.form.d_model.setCurrentIndex(d.form.d_model.findData(128))
    d.form.layers.setValue(2)
    assert d.form.init_base.isEnabled()
    d.form.init_base.setChecked(True)
    base_size = decoder_size(d.form.base_entry())
    assert d.form.settings()["n_heads"] == base_size["n_heads"]  # the base decoder's, so its weights fit
    d.form.layers.setValue(1)
    assert not d.form.init_base.isEnabled() and not d.form.init_base.isChecked()
    assert "only at its decoder's size" in d.form.init_note.text()
    assert d.form.name.text() == "addition-d128-10min"
    d.form.name.setText("mine")
    qtbot.keyClick(d.form.name, Qt.Key_S)  # typed by the user: no longer follows the size
    d.form.d_model.setCurrentIndex(d.form.d_model.findData(64))
    assert d.form.name.text() == "mines"


def test_closing_the_dialog_mid_run_stops_it_with_the_checkpoint_saved(qtbot, dialog):
    d = dialog
    make_tiny(d, minutes=2.0, name="close-me")
    d.start()
    qtbot.waitUntil(lambda: d.step() >= 1, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(d.statusMessage, timeout=RUN_TIMEOUT_MS) as message:
        d.close()
    assert not d.isVisible() and d.state == "idle"
    assert "Stopped when the dialog closed" in message.args[0]
    assert d._start.checkpoint.is_file() and checkpoint_step(d._start.checkpoint) >= 1


def test_closing_the_main_window_mid_run_lets_the_training_process_save_and_end(qtbot, window):
    """Training runs in an engine process of its own (from the menu, as a user starts it): closing the
    window waits for nothing; the process saves its checkpoint at its next step, then exits."""
    window.train_decoder_action.trigger()
    d = window.train_dialog
    make_tiny(d, minutes=2.0, name="window-closes")
    d.start()
    qtbot.waitUntil(lambda: d.step() >= 1, timeout=RUN_TIMEOUT_MS)
    process = d.client._link._process
    assert process is not None  # its own process, not a thread of the window
    window.close()
    assert not d.client.running  # the window let go at once
    qtbot.waitUntil(lambda: process.poll() is not None, timeout=RUN_TIMEOUT_MS)
    assert process.returncode == 0
    assert d._start.checkpoint.is_file() and checkpoint_step(d._start.checkpoint) >= 1


def test_the_curve_shows_a_record_with_and_without_quality_checks(qtbot):
    curve = TrainingCurve()
    qtbot.addWidget(curve)
    quality = [{"step": s, "seconds": 60.0 * s, "pairs": 128 * s, "rates": {"x0.pre": 0.1 * s, "x1.post": 0.2},
                "well_formed": 0.9} for s in range(1, 4)]
    curve.set_record(TrainingRecord("t", [[100, 10.0, 2.0], [200, 20.0, 1.5]], quality))
    assert curve.loss_points() == 2 and curve.quality_points() == 3
    assert set(curve.site_curves) == {"x0.pre", "x1.post"} and "x0.pre 0.30" in curve.legend.text()
    assert curve.note.isHidden()
    curve.set_record(TrainingRecord("old", [[100, 10.0, 2.0]], []))
    assert curve.quality_points() == 0 and not curve.site_curves
    assert not curve.note.isHidden() and curve.note.text() == NO_QUALITY_NOTE

    record = read_record(BUNDLED_DIR / "counting")
    assert record.history and record.title.startswith("counting: decoder training")


def test_the_png_script_renders_the_bundled_counting_curve(tmp_path):
    folder = BUNDLED_DIR / "counting"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    out = tmp_path / "counting-curve.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "app.training.curve", str(folder), "--png", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before

    bad = subprocess.run([sys.executable, "-m", "app.training.curve", str(tmp_path), "--png", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_a_check_in_progress_and_a_loss_before_the_first_step_read_as_words(qtbot):
    """train_decoder reports its quality check site by site, before step 1 (loss NaN): the dialog
    says where the check stands, and never "loss nan"."""
    from engine.decoder.progress import CheckProgress, DecoderProgress

    d = TrainDialog()
    qtbot.addWidget(d)
    check = CheckProgress(done=3, planned=32, of_sites=157, seconds=12.0, limit=None, per_site=None, queries=48)
    d._on_progress(DecoderProgress(step=0, seconds=12.0, budget=240.0, loss=float("nan"), pairs=0, check=check))
    text = d.count_label.text()
    assert "nan" not in text and "loss —" in text
    assert "checking sites 3/32" in text and "left" in text  # 29 sites at 4 s each still to come
