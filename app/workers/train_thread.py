"""Decoder training off the GUI thread: a QObject worker on its own QThread, and its GUI-side client.

Same shape as the engine thread (engine_worker.py), but a thread of its own: training runs for
minutes and queries must stay possible meanwhile. One job at a time. Stopping is a
threading.Event in the job that train_decoder checks before every step; it saves the checkpoint
and raises Cancelled, so Pause, Cancel and closing all keep the progress, and a later job with
the same model name resumes it. Progress reaches the GUI at most every PROGRESS_EVERY_S (plus
every update that carries a quality check), whatever the step rate.

torch and the engine's training code are imported here, on the training thread, never at app
start-up.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.server.service import describe_error

PROGRESS_EVERY_S = 0.1


@dataclass
class TrainJob:
    """What the dialog asks for: train a decoder for `base`'s probed model into user model `name`."""
    base: object  # ModelEntry whose probed weights are copied (and whose decoder may be the start)
    name: str
    settings: dict  # DecoderTrainConfig fields (minutes, d_model, n_layers, ...)
    init_from_base: bool = False  # start from the base's decoder (ignored when a checkpoint is resumed)
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # why stop was set ("pause", "cancel", "close"); read by the GUI only


@dataclass
class TrainStart:
    """The job has its model folder and checkpoint; sent before the first step."""
    entry: object  # ModelEntry of the user model being trained
    checkpoint: Path
    resumed_step: int  # 0 for a fresh run
    history: list  # the checkpoint's (step, seconds, loss) points, when resumed
    quality: list  # the checkpoint's quality checks (dicts), when resumed


def command_twin(job: TrainJob, task: str) -> str:
    """The command-line twin of a job, recorded in the model card."""
    s = job.settings
    parts = [f"python main.py train-decoder {task} --model {job.name} --minutes {s['minutes']:g}"]
    for key, flag in (("d_model", "--d-model"), ("n_layers", "--layers"), ("n_heads", "--heads")):
        if key in s:
            parts.append(f"{flag} {s[key]}")
    if "check_every_s" in s:
        parts.append(f"--check-every {s['check_every_s'] / 60:g}")
    if job.init_from_base:
        parts.append(f"--init-from {job.base.name}")
    return (f"InversionView Studio, Train decoder (a new user model from {job.base.name}'s probed weights); "
            f"command-line twin: {' '.join(parts)}")


class TrainWorker(QObject):
    """Lives on the training thread; `train` runs one job to its end, stop or error."""

    began = Signal(object, object)  # job, TrainStart
    progress = Signal(object, object)  # job, DecoderProgress (throttled; every one with a quality check)
    finished = Signal(object, object, object)  # job, ModelEntry (now with its decoder), DecoderTrainResult
    stopped = Signal(object, object)  # job, the last DecoderProgress (None when no step was made)
    errored = Signal(object, str)  # job, message

    @Slot(object)
    def train(self, job: TrainJob) -> None:
        last = None
        try:
            from engine.imports import import_engine
            from engine.threads import apply_threads

            import_engine()  # a no-op once the engine thread did it; otherwise, as there (engine/imports.py)
            apply_threads(with_gui=True)  # every core but the GUI's, as the engine thread
            from engine.decoder.job import checkpoint_path, finish, new_user_model, starting_state
            from engine.decoder.train import DecoderTrainConfig, checkpoint_meta, train_decoder
            from engine.errors import Cancelled
            from engine.store.folders import load_probed

            cfg = DecoderTrainConfig(**job.settings)
            # StoreError for a bad or clashing name, or a finished model (never overwritten)
            entry = new_user_model(job.base, job.name)
            checkpoint = checkpoint_path(entry)
            meta = checkpoint_meta(checkpoint, cfg, job.name)  # StoreError for a stopped run of another size
            probed = load_probed(entry)
            init_state = None
            if job.init_from_base and not meta:
                init_state = starting_state(job.base, probed, cfg)
            self.began.emit(job, TrainStart(entry, checkpoint, int(meta.get("step", 0)),
                                            list(meta.get("history", [])), list(meta.get("quality", []))))
            sent = [0.0]

            def on_progress(p) -> None:
                nonlocal last
                last = p
                now = time.monotonic()
                if p.quality is not None or now - sent[0] >= PROGRESS_EVERY_S:
                    sent[0] = now
                    self.progress.emit(job, p)

            try:
                decoder, result = train_decoder(probed, cfg, checkpoint, resume=True, on_progress=on_progress,
                                                should_stop=job.stop.is_set, init_state=init_state)
            except Cancelled:
                self.stopped.emit(job, last)
                return
            done = finish(entry, decoder, result, cfg, command_twin(job, entry.task), str(probed.device),
                          job.base.name if init_state is not None else None)
            self.finished.emit(job, done, result)
        except BaseException as e:  # noqa: BLE001 - every failure must reach the user
            self.errored.emit(job, describe_error(e))


class TrainClient(QObject):
    """GUI side: starts jobs, asks them to stop, drops replies of jobs it no longer follows."""

    began = Signal(object)  # TrainStart
    progress = Signal(object)  # DecoderProgress
    finished = Signal(object, object)  # ModelEntry, DecoderTrainResult
    stopped = Signal(str, object)  # reason ("pause", "cancel", "close"), last DecoderProgress or None
    failed = Signal(str)

    _train = Signal(object)  # to the worker (queued across threads)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("decoder-training")
        self._worker = TrainWorker()
        self._worker.moveToThread(self._thread)
        self._train.connect(self._worker.train)
        self._worker.began.connect(self._on_began)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.stopped.connect(self._on_stopped)
        self._worker.errored.connect(self._on_errored)
        self._job: TrainJob | None = None
        self._thread.start()

    def start(self, job: TrainJob) -> None:
        if self._job is not None:
            raise RuntimeError("a decoder is already being trained")
        self._job = job
        self._train.emit(job)

    def stop(self, reason: str) -> None:
        """Ask the running job to stop at its next step (its checkpoint is saved); `stopped` follows."""
        if self._job is not None and not self._job.stop.is_set():
            self._job.reason = reason
            self._job.stop.set()

    @property
    def running(self) -> bool:
        return self._job is not None

    @property
    def stopping(self) -> bool:
        return self._job is not None and self._job.stop.is_set()

    @property
    def thread(self) -> QThread:
        return self._thread

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Stop the job, end the thread's loop and wait; False if it is still inside a long call."""
        self.stop("close")
        self._thread.quit()
        done = self._thread.wait(timeout_ms)
        if done:
            self._job = None
        return done

    # ---- replies (delivered on the GUI thread) --------------------------------------------
    def _on_began(self, job, start) -> None:
        if job is self._job:
            self.began.emit(start)

    def _on_progress(self, job, p) -> None:
        if job is self._job:
            self.progress.emit(p)

    def _on_finished(self, job, entry, result) -> None:
        if job is self._job:
            self._job = None
            self.finished.emit(entry, result)

    def _on_stopped(self, job, last) -> None:
        if job is self._job:
            self._job = None
            self.stopped.emit(job.reason or "cancel", last)

    def _on_errored(self, job, message: str) -> None:
        if job is self._job:
            self._job = None
            self.failed.emit(message)
