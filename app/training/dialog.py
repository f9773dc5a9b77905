"""File > Train decoder…: train a decoder for a probed model into a new user model, with live curves.

The dialog only shows and asks; training runs on its own thread (train_worker.py). Pause,
Cancel and closing all stop the run at its next step with the checkpoint saved: Resume, or a
later Start with the same name, continues from there. When the run ends the engine writes the
decoder, its config section and CARD.md (engine.decoder.job.finish) and the new model joins the
main window's model picker.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from app.progress import format_seconds
from app.style import error_css
from app.training.cli_note import CliNote
from app.training.curve import TrainingCurve, TrainingRecord
from app.training.form import TrainForm
from app.training.retrain import ask_to_train_over, finished_model
from app.workers.train_client import TrainClient, TrainJob
from engine.store.folders import list_models

PROGRESS_STEPS = 1000  # the progress bar's resolution


class TrainDialog(QDialog):
    modelTrained = Signal(object)  # ModelEntry: a new decoder is written (the picker refreshes)
    useModel = Signal(object)  # ModelEntry: open it in the main window
    statusMessage = Signal(str)  # for the main window's status bar (e.g. stopped by closing)

    def __init__(self, parent=None, backend=None):
        """backend: a test's engine backend, run in a thread; None: an engine process per training job."""
        super().__init__(parent)
        self.setWindowTitle("Train decoder")
        self.setModal(False)
        self.resize(1040, 780)
        self.client = TrainClient(self, backend)
        self.state = "idle"  # idle, starting, running, stopping, paused, done
        self._job_args: tuple | None = None  # (base, name, settings) of the run that Resume continues
        self._start = None  # TrainStart of the current run
        self._last = None  # the last DecoderProgress shown
        self.trained = None  # ModelEntry of the last finished run
        self.question = None  # the QMessageBox asking whether to train over a finished model
        self._build()
        self._connect()
        self._set_state("idle")

    # ---- construction -------------------------------------------------------------------
    def _build(self) -> None:
        self.form = TrainForm()
        self.cli_note = CliNote()  # opened folders and Hugging Face models train on the command line
        self.curve = TrainingCurve()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        self.progress_bar.setValue(0)
        self.time_label = QLabel()
        self.count_label = QLabel()
        self.check_label = QLabel()
        self.check_label.setWordWrap(True)
        self.status = QLabel()
        self.status.setTextFormat(Qt.PlainText)  # engine messages hold paths and quotes
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.time_label)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Stop with the checkpoint saved; Resume continues from there")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop; the checkpoint stays, so Start with the same name resumes")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Choose the new model in the main window")
        self.close_button = QPushButton("Close")
        self.close_button.setAutoDefault(False)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.cancel_button, self.use_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        lay = QVBoxLayout(self)
        lay.addWidget(self.form)
        lay.addWidget(self.cli_note)
        lay.addWidget(self.curve, 1)
        lay.addLayout(progress_row)
        lay.addWidget(self.count_label)
        lay.addWidget(self.check_label)
        lay.addWidget(self.status)
        lay.addLayout(buttons)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause_or_resume)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self._use)
        self.close_button.clicked.connect(self.close)
        c = self.client
        c.began.connect(self._on_began)
        c.progress.connect(self._on_progress)
        c.finished.connect(self._on_finished)
        c.stopped.connect(self._on_stopped)
        c.failed.connect(self._on_failed)

    # ---- actions --------------------------------------------------------------------------
    def start(self, confirmed: bool = False) -> bool:
        """Start a run with the form's choices (a stopped run of the same name resumes); False if
        refused, or while asking whether to train over a finished model (app/training/retrain.py)."""
        if self.client.running:
            return False
        base, name = self.form.base_entry(), self.form.model_name()
        if base is None:
            self._show_error("No model to train a decoder for: open or train a probed model first.")
            return False
        clash = next((e for e in list_models() if e.name == name and e.source != "user"), None)
        if clash is not None:
            self._show_error(f"{name!r} is the name of a {clash.source} model: choose another name.")
            return False
        finished = None if confirmed else finished_model(name)
        if finished is not None:
            self.question = ask_to_train_over(self, finished, lambda: self.start(confirmed=True))
            return False
        self._job_args = (base, name, self.form.settings())
        self.curve.clear()
        self.curve.set_title(f"{name}: decoder training")
        self._start = self._last = self.trained = None
        self.progress_bar.setValue(0)
        for label in (self.time_label, self.count_label, self.check_label):
            label.clear()
        self._run(TrainJob(base, name, self._job_args[2], self.form.init_from_base()))
        self._show_status(f"Preparing {name}: copying {base.name}'s probed weights and loading them…")
        return True

    def choose_base(self, entry) -> bool:
        """The main window's open model as the base; one the dialog cannot train (an opened folder,
        a Hugging Face model) fills the command-line note instead. False in that case."""
        if self.form.select_base(str(entry.path)):
            return True
        self.cli_note.set_folder(str(entry.path))
        return False

    def _run(self, job: TrainJob) -> None:
        self.client.start(job)
        self._set_state("starting")

    def pause_or_resume(self) -> None:
        if self.state == "paused":
            self.resume()
        elif self.state in ("starting", "running"):
            self.client.stop("pause")
            self._set_state("stopping")
            self._show_status("Pausing: saving the checkpoint…")

    def resume(self) -> None:
        if self.state != "paused" or self._job_args is None:
            return
        base, name, settings = self._job_args
        self._run(TrainJob(base, name, settings))  # the checkpoint has the weights: no init
        self._show_status(f"Resuming {name}…")

    def cancel(self) -> None:
        if self.state == "paused":
            self._set_state("idle")
            self._show_status(self._stopped_text("Cancelled"))
        elif self.state in ("starting", "running"):
            self.client.stop("cancel")
            self._set_state("stopping")
            self._show_status("Cancelling: saving the checkpoint…")

    def _use(self) -> None:
        if self.trained is not None:
            self.useModel.emit(self.trained)

    # ---- replies from the training thread --------------------------------------------------
    def _on_began(self, start) -> None:
        self._start = start
        name = start.entry.name
        if start.resumed_step and not self.curve.loss_points() and not self.curve.quality_points():
            # a run stopped in an earlier session: draw what its checkpoint recorded
            self.curve.set_record(TrainingRecord(f"{name}: decoder training", start.history, start.quality))
        if self.state == "starting":
            self._set_state("running")
        what = f"Resuming {name} from step {start.resumed_step:,}" if start.resumed_step else f"Training {name}"
        self._show_status(f"{what}; checkpoint {start.checkpoint}")

    def _on_progress(self, p) -> None:
        self._last = p
        self.curve.add_loss(p.seconds, p.loss)
        if p.quality is not None:
            q = p.quality
            self.curve.add_quality(q.seconds, q.rates, q.well_formed)
            self.check_label.setText(f"Last check at {q.seconds / 60:.2f} min (step {q.step:,}): average in-ε rate "
                                     f"{q.average:.2f}, well-formed {q.well_formed:.0%}; each site's rate is beside "
                                     "the curve.")
        self._show_progress(p)

    def _show_progress(self, p, stopped: str = "") -> None:
        """stopped ("paused", "cancelled"…): the run is not going on, so no time is "left" to it."""
        self.progress_bar.setValue(round(PROGRESS_STEPS * min(p.seconds / max(p.budget, 1e-9), 1.0)))
        left = stopped or f"about {format_seconds(p.budget - p.seconds)} left"
        self.time_label.setText(f"{format_seconds(p.seconds)} of {format_seconds(p.budget)} · {left}")
        loss = "loss —" if p.loss != p.loss else f"loss {p.loss:.3f}"  # NaN before the first step
        check = ""
        if p.check is not None and not stopped:  # a quality check in progress: where it stands
            c = p.check
            left = c.left()
            check = (f" · checking sites {c.done}/{c.expected()}" +
                     (f", about {format_seconds(left)} left" if left is not None else ""))
        self.count_label.setText(f"step {p.step:,} · {p.pairs:,} pairs · {loss}{check}")

    def _on_finished(self, entry, result) -> None:
        self.trained = entry
        self.curve.flush()
        self.progress_bar.setValue(PROGRESS_STEPS)
        self.count_label.setText(f"step {result.steps:,} · {result.pairs:,} pairs")
        self.time_label.setText(f"{format_seconds(result.seconds)} trained")
        self._set_state("done")
        self.form.refresh_bases()  # the new model can be a base too
        self._show_status(f"Done: {entry.name} trained {result.steps:,} steps ({result.pairs:,} pairs) in "
                          f"{format_seconds(result.seconds)}; saved in {entry.path}. It is in the model picker now.")
        self.modelTrained.emit(entry)

    def _on_stopped(self, reason: str, last) -> None:
        if last is not None and last is not self._last:  # the step it stopped at, throttled away
            self._last = last
            self.curve.add_loss(last.seconds, last.loss)
        if self._last is not None:
            self._show_progress(self._last, "paused" if reason == "pause" else "stopped")
        self.curve.flush()
        if reason == "pause":
            self._set_state("paused")
            self._show_status(f"Paused at step {self.step():,}; the checkpoint is saved: Resume continues from there.")
            return
        self._set_state("idle")
        text = self._stopped_text("Stopped when the dialog closed" if reason == "close" else "Cancelled")
        self._show_status(text)
        if reason == "close":
            self.statusMessage.emit(text)

    def _on_failed(self, message: str) -> None:
        self._set_state("idle")
        if self._last is not None:
            self._show_progress(self._last, "failed")
        self._show_error(message)

    def _stopped_text(self, what: str) -> str:
        name = self._job_args[1] if self._job_args else ""
        where = f" ({self._start.checkpoint})" if self._start is not None else ""
        return (f"{what} at step {self.step():,}. The checkpoint stays{where}: Start with the name {name!r} "
                "resumes from there.")

    def step(self) -> int:
        """The last step shown (the checkpoint's step after a stop)."""
        if self._last is not None:
            return self._last.step
        return self._start.resumed_step if self._start is not None else 0

    # ---- state ----------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        editable = state in ("idle", "done")
        self.form.set_editable(editable)
        self.start_button.setEnabled(editable)
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.pause_button.setEnabled(state in ("starting", "running", "paused"))
        self.cancel_button.setEnabled(state in ("starting", "running", "paused"))
        self.use_button.setEnabled(state == "done" and self.trained is not None)

    def _show_status(self, text: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(text)

    def _show_error(self, text: str) -> None:
        self.status.setStyleSheet(f"color: {error_css(self)};")
        self.status.setText(text)

    # ---- showing and closing ----------------------------------------------------------------
    def showEvent(self, event) -> None:
        if self.state in ("idle", "done"):
            self.form.refresh_bases()  # models trained or opened since
        super().showEvent(event)

    def done(self, result: int) -> None:
        """Close, Esc and the window's close button all end here: a running job stops, keeping its checkpoint."""
        if self.client.running:
            self.client.stop("close")
            self._set_state("stopping")
        super().done(result)

    def shutdown(self) -> None:
        """Stop any run and let go of its engine, which saves the checkpoint and exits on its own."""
        self.client.shutdown()


def open_for(window) -> TrainDialog:
    """File > Train decoder…: the window's one non-modal dialog, made on first use and kept (with its
    curves) while the window lives; a model it trains joins the picker, and Use opens it."""
    if window.train_dialog is None:
        dialog = window.train_dialog = TrainDialog(window)

        def trained(entry) -> None:
            window.picker.refresh()
            window.statusBar().showMessage(f"New model {entry.name} is in the model picker.", 15000)

        def use(entry) -> None:
            found = window.picker.find(str(entry.path))
            if found is not None:
                window.choose_model(found)

        dialog.modelTrained.connect(trained)
        dialog.useModel.connect(use)
        dialog.statusMessage.connect(lambda text: window.statusBar().showMessage(text, 20000))
        if window.session.entry is not None:
            dialog.choose_base(window.session.entry)  # or names its folder in the command to run
    window.train_dialog.show()
    window.train_dialog.raise_()
    window.train_dialog.activateWindow()
    return window.train_dialog
