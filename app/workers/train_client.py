"""Decoder training in an engine process of its own: the Train dialog's client.

Each job starts its own engine (`python -m engine.server`, engine/server/training.py), so training
never shares the window's process, and the window's engine stays free for queries. One job at a
time. Stopping is a cancel message, which train_decoder checks before every step: it saves the
checkpoint and stops, so Pause, Cancel and closing all keep the progress, and a later job with
the same model name resumes it. Closing the window lets go of the training engine at once; it
saves its checkpoint and exits on its own.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from app.workers.engine_link import EngineLink, engine_log_path


@dataclass
class TrainJob:
    """What the dialog asks for: train a decoder for `base`'s probed model into user model `name`."""
    base: object  # ModelEntry whose probed weights are copied (and whose decoder may be the start)
    name: str
    settings: dict  # DecoderTrainConfig fields (minutes, d_model, n_layers, ...)
    init_from_base: bool = False  # start from the base's decoder (ignored when a checkpoint is resumed)
    stop: threading.Event = field(default_factory=threading.Event)  # set once a stop was asked (GUI side)
    reason: str = ""  # why ("pause", "cancel", "close")


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


class TrainClient(QObject):
    """Starts a training engine per job, asks it to stop, and turns its replies into signals."""

    began = Signal(object)  # TrainStart
    progress = Signal(object)  # DecoderProgress
    finished = Signal(object, object)  # ModelEntry, TrainSummary
    stopped = Signal(str, object)  # reason ("pause", "cancel", "close"), last DecoderProgress or None
    failed = Signal(str)

    _reply = Signal(object, object)  # job, reply header (from the link's reader thread)

    def __init__(self, parent: QObject | None = None, backend=None):
        super().__init__(parent)
        self._backend = backend  # given: the engine runs in a thread of this process (tests)
        self._reply.connect(self._on_reply)
        self._job: TrainJob | None = None
        self._link: EngineLink | None = None

    def start(self, job: TrainJob) -> None:
        if self._job is not None:
            raise RuntimeError("a decoder is already being trained")
        self._job = job

        def read(header: dict) -> None:
            try:
                self._reply.emit(job, header)
            except RuntimeError:  # the dialog has gone
                pass

        def ended(why: str) -> None:
            read({"reply": "ended", "body": why})

        self._link = EngineLink(read, ended, backend=self._backend)
        self._link.start()
        self._link.send({"op": "request", "id": 1, "kind": "train"},
                        {"params": {"base": job.base, "name": job.name, "settings": job.settings,
                                    "init_from_base": job.init_from_base, "command": command_twin(job, job.base.task)}})

    def stop(self, reason: str) -> None:
        """Ask the running job to stop at its next step (its checkpoint is saved); `stopped` follows."""
        if self._job is not None and not self._job.stop.is_set():
            self._job.reason = reason
            self._job.stop.set()
            self._link.send({"op": "cancel", "id": 1})

    @property
    def running(self) -> bool:
        return self._job is not None

    @property
    def stopping(self) -> bool:
        return self._job is not None and self._job.stop.is_set()

    @property
    def engine_alive(self) -> bool:
        return self._link is not None and self._link.alive

    def shutdown(self, timeout_ms: int = 0) -> bool:
        """Stop the job and let go of its engine, which saves the checkpoint and exits on its own:
        nothing here waits for it."""
        self.stop("close")
        if self._link is not None:
            self._link.close(kill=False)
        self._job = None
        return True

    # ---- replies (GUI thread) -------------------------------------------------------------
    def _on_reply(self, job, header: dict) -> None:
        if job is not self._job:
            return
        reply, body = header.get("reply"), header.get("body")
        if reply == "item":
            item = body["item"]
            if "began" in item:
                self.began.emit(item["began"])
            else:
                self.progress.emit(item["progress"])
            return
        if reply in ("hello", "started", "chunk"):
            return
        self._job = None
        link, self._link = self._link, None
        if link is not None:
            link.close(kill=False)  # the job is over: its engine exits
        if reply == "done" and "stopped" in body:
            self.stopped.emit(job.reason or "cancel", body["stopped"])
        elif reply == "done":
            self.finished.emit(body["entry"], TrainSummary(body["steps"], body["pairs"], body["seconds"]))
        elif reply == "skipped":
            self.stopped.emit(job.reason or "cancel", None)
        elif reply == "ended":
            self.failed.emit(f"The training engine stopped: {body} (log: {engine_log_path()})")
        else:
            self.failed.emit(str(body))


@dataclass
class TrainSummary:
    """What the dialog says of a finished run."""
    steps: int
    pairs: int
    seconds: float
