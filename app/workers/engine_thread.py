"""The engine's two long-lived threads: QObject workers moved to QThreads, and their GUI-side client.

Why this shape (docs/design.md): torch work must never run on the GUI thread. One thread runs model
loads and queries, one at a time; a second runs flow graphs and neuron readouts, so that a GPT-2
flow graph (a second or more) never waits behind a query nor holds one up. Every request carries an id; the client
forgets ids it no longer cares about, so stale results are dropped. Cancel is a
threading.Event the GUI thread sets and run_query checks between decoding steps. Every
exception in the worker becomes an `errored` signal with a message a person can act on.

Flow-graph requests (FlowRequest, NeuronRequest) go to a FlowWorker on the flow thread
(flow_worker.py); only the newest request of each kind is answered, older ones are skipped or
their replies dropped. The two threads share the loaded models: the flow view asks for a graph
only once its model has loaded, and hooked passes on one bridge take turns
(engine.probed.sites.hooked_pass).

The engine entry points are injectable (EngineBackend) so tests of pure UI behaviour can use a
fake engine; the real one is imported on the engine thread, never at app start-up.
"""
from __future__ import annotations

import logging
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.workers.flow_request import FlowRequest, NeuronRequest
from app.workers.flow_worker import FlowWorker
from app.workers.job_request import JobRequest, real_jobs
from app.workers.query_request import QueryRequest, result_header
from engine.errors import USER_ERRORS
from engine.logs import log_path
from engine.query.types import QueryAccumulator
from engine.store.folders import no_decoder_message, record_path

log = logging.getLogger(__name__)

MAX_LOADED = 2  # models kept loaded on the engine thread
PARTIAL_EVERY_S = 0.05  # the worker sends accumulated snapshots at most this often (GUI throttles too)
WARM_UP_CANDIDATES = 128  # one chunk of the default size


@dataclass
class EngineBackend:
    load_inverter: Callable  # (ModelEntry) -> Inverter
    run_query: Callable  # run_query(inv, text, site, position, options, on_chunk, cancel) -> QueryResult
    warm_up: Callable | None = None  # (Inverter) -> None, run once after loading
    flow_graph: Callable | None = None  # (Inverter, text, target, top_k, cancel=Event) -> FlowGraph (flow_worker.py)
    top_neurons: Callable | None = None  # (Inverter, FlowGraph, layer, position) -> [NeuronReadout]
    jobs: dict = field(default_factory=dict)  # kind -> fn(inv, params, report, cancel) (job_request.py)


def real_backend() -> EngineBackend:
    """engine.query, imported lazily: the first call happens on the engine thread."""

    def load_inverter(entry):
        from engine import heap
        from engine.imports import import_engine

        import_engine()  # torch and transformer_lens, imported so that the window keeps running (engine/imports.py)
        from engine.query.run import load_inverter as load
        from engine.runtime import flush_denormals
        from engine.threads import apply_threads

        apply_threads(with_gui=True)  # on the engine thread, before any torch work
        flush_denormals()  # a per-thread mode: this thread may not be the one that imported engine.runtime
        with heap.paused():  # a load makes many objects that all survive: no collection passes meanwhile
            inv = load(entry, decoder_optional=True)  # without a decoder: sites and the flow graph still work
        # every token's display string, made here rather than when the window asks for it (a text
        # model's task is shared with the window: engine/store/text_models.py)
        inv.probed.task.vocab.strings()
        return inv

    def run_query(inv, text, site, position, options, on_chunk=None, cancel=None):
        from engine.query.run import run_query as run

        return run(inv, text, site, position, options=options, on_chunk=on_chunk, cancel=cancel)

    def warm_up(inv):
        # torch pays one-time costs (kernel set-up per shape) on the first queries; paying them
        # while "loading" is shown makes the user's first Run as quick as the next ones
        from app.workers.query_request import default_position
        from engine.query.types import QueryOptions

        trained = [s.short for s in inv.sites]
        if not inv.can_query or not trained:
            return  # no decoder: the first local search pays its own set-up (a re-run, no sampling)
        task = inv.probed.task
        ids = task.parse_query(task.examples()[0])
        site = task.default_site if task.default_site in trained else trained[-1]
        options = QueryOptions(candidates=WARM_UP_CANDIDATES, chunk_size=WARM_UP_CANDIDATES)
        run_query(inv, task.examples()[0], site, default_position(task.name, task.position_labels(ids)), options)

    def flow_graph(inv, text, target=None, top_k=10, cancel=None):
        from engine.flow.build import flow_for_query
        from engine.runtime import flush_denormals

        flush_denormals()  # per thread: the flow thread's own setting
        return flow_for_query(inv.probed, text, target=target, top_k=top_k, cancel=cancel)

    def top_neurons(inv, graph, layer, position):
        from engine.flow.build import top_neurons as neurons

        return neurons(inv.probed.bridge, graph, layer, position)

    return EngineBackend(load_inverter=load_inverter, run_query=run_query, warm_up=warm_up,
                         flow_graph=flow_graph, top_neurons=top_neurons, jobs=real_jobs())


@dataclass
class LoadedModel:
    name: str
    key: str  # str(entry.path)
    task: str
    trained_sites: list[str] = field(default_factory=list)  # short names the decoder was trained on
    seconds: float = 0.0
    no_query: str = ""  # why the model cannot be queried at all; empty when it can (the search needs no decoder)
    has_decoder: bool = True  # False: only the local search answers (QueryOptions.sampler "auto" or "search")


def decoder_stamp(entry) -> tuple:
    """What a loaded Inverter's decoder was read from: the folder's decoder file and its record (which
    names the decoder's config and sites), each as (size, mtime, inode) or None when absent. The model
    cache is keyed by the folder and checked against this, so a decoder trained into the folder
    meanwhile (`train-decoder --model FOLDER`) is loaded rather than the cached decoder-less model."""
    stamp = []
    for path in (entry.path / "decoder.safetensors", record_path(entry.path)):
        try:
            st = path.stat()
            stamp.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def describe_error(e: BaseException) -> str:
    """One readable line; unexpected errors also leave their traceback in the log file (and on
    stderr) for bug reports."""
    if isinstance(e, USER_ERRORS):
        return str(e)
    if isinstance(e, MemoryError):
        return "Out of memory: try fewer candidates or a smaller model."
    log.error("unexpected error in the engine", exc_info=e)
    traceback.print_exception(e, file=sys.stderr)
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if text:
        return f"{type(e).__name__}: {text}"
    return f"Unexpected {type(e).__name__} in the engine (details in the log: {log_path()})."


class EngineWorker(QObject):
    """Lives on the engine thread; its slots run there, one request at a time."""

    modelLoaded = Signal(int, object)  # request id, LoadedModel
    progress = Signal(int, int, int, float)  # request id, done, total, elapsed seconds
    partial = Signal(int, object)  # request id, QueryResult so far (complete=False)
    finished = Signal(int, object)  # request id, QueryResult (complete=False when cancelled)
    errored = Signal(int, str)  # request id, message
    skipped = Signal(int)  # request id: cancelled before it started
    jobItem = Signal(int, object, int, int)  # request id, a streamed piece of a job's answer, done, total
    jobFinished = Signal(int, object)  # request id, the job's answer

    def __init__(self, backend: EngineBackend):
        super().__init__()
        self._backend = backend
        # model folder -> Inverter, most recent last; switching back is instant, and at most
        # MAX_LOADED stay in memory (a GPT-2 small is half a gigabyte)
        self._inverters: OrderedDict[str, object] = OrderedDict()
        self._stamps: dict[str, tuple] = {}  # model folder -> decoder_stamp() of the Inverter loaded from it

    @Slot(int, object)
    def load_model(self, req_id: int, entry) -> None:
        start = time.monotonic()
        try:
            key, stamp = str(entry.path), decoder_stamp(entry)
            inv = self._inverters.get(key)
            if inv is None or self._stamps.get(key) != stamp:  # a decoder trained since: load it
                inv = self._backend.load_inverter(entry)
                if self._backend.warm_up is not None:
                    try:
                        self._backend.warm_up(inv)
                    except Exception as e:  # noqa: BLE001 - a failed warm-up only costs speed
                        log.warning("engine warm-up skipped: %s", describe_error(e))
                self._inverters[key], self._stamps[key] = inv, stamp
                while len(self._inverters) > MAX_LOADED:
                    gone, _ = self._inverters.popitem(last=False)  # the least recently chosen model goes
                    self._stamps.pop(gone, None)
            self._inverters.move_to_end(key)
            trained = [s.short for s in getattr(inv, "sites", [])]
            no_query = "" if getattr(inv, "can_query", True) else no_decoder_message(entry)
            self.modelLoaded.emit(req_id, LoadedModel(entry.name, key, entry.task, trained,
                                                      time.monotonic() - start, no_query,
                                                      bool(getattr(inv, "has_decoder", True))))
        except BaseException as e:  # noqa: BLE001 - every failure must reach the user
            self.errored.emit(req_id, f"Could not load model {entry.name!r}: {describe_error(e)}")

    @Slot(int, object)
    def run_query(self, req_id: int, request: QueryRequest) -> None:
        if request.cancel.is_set():
            self.skipped.emit(req_id)  # cancelled or superseded while it waited in the queue
            return
        try:
            inv = self._inverters.get(request.model_key)
            if inv is None:
                raise RuntimeError("the model is not loaded (see the message about loading it)")
            acc = QueryAccumulator(result_header(inv, request))
            last = [0.0]

            def on_chunk(chunk) -> None:
                if request.cancel.is_set():
                    return  # nobody is listening; let run_query wind down
                acc.add(chunk)
                self.progress.emit(req_id, chunk.done, chunk.total, chunk.elapsed)
                now = time.monotonic()
                if now - last[0] >= PARTIAL_EVERY_S or chunk.done >= chunk.total:
                    last[0] = now
                    self.partial.emit(req_id, acc.result(complete=False))

            result = self._backend.run_query(inv, request.text, request.site, request.position,
                                             request.options, on_chunk, request.cancel)
            self.finished.emit(req_id, result)
        except BaseException as e:  # noqa: BLE001
            self.errored.emit(req_id, describe_error(e))

    @Slot(int, object)
    def run_job(self, req_id: int, request: JobRequest) -> None:
        """A map or a patching run (job_request.py): pieces stream as jobItem, the answer as jobFinished."""
        if request.cancel.is_set():
            self.skipped.emit(req_id)
            return
        try:
            fn = self._backend.jobs.get(request.kind)
            if fn is None:
                raise RuntimeError(f"this engine cannot run {request.kind!r} jobs")
            inv = self.loaded(request.model_key)

            def report(item, done: int, total: int) -> None:
                if not request.cancel.is_set():
                    self.jobItem.emit(req_id, item, done, total)

            self.jobFinished.emit(req_id, fn(inv, request.params, report, request.cancel))
        except BaseException as e:  # noqa: BLE001
            self.errored.emit(req_id, describe_error(e))

    def loaded(self, model_key: str):
        """The Inverter of a loaded model (the flow worker on this thread shares them)."""
        inv = self._inverters.get(model_key)
        if inv is None:
            raise RuntimeError("the model is not loaded (see the message about loading it)")
        return inv


class EngineClient(QObject):
    """GUI-side handle: sends requests, drops stale replies, and owns the thread's lifetime."""

    modelLoading = Signal(str)  # model name
    modelLoaded = Signal(object)  # LoadedModel
    modelFailed = Signal(str)
    runProgress = Signal(int, int, float)  # done, total, elapsed
    runPartial = Signal(object)  # QueryResult so far
    runFinished = Signal(object)  # QueryResult
    runFailed = Signal(str)
    runCancelled = Signal()  # cancelled before the engine started it (e.g. while a model loaded)
    flowReady = Signal(object, object, object)  # FlowRequest, FlowGraph, PreparedGraph or None (the newest request's)
    flowFailed = Signal(object, str)  # FlowRequest, message
    neuronsReady = Signal(object, object)  # NeuronRequest, [NeuronReadout]
    neuronsFailed = Signal(object, str)  # NeuronRequest, message
    jobItem = Signal(object, object, int, int)  # JobRequest, streamed piece, done, total
    jobFinished = Signal(object, object)  # JobRequest, answer
    jobFailed = Signal(object, str)  # JobRequest, message

    _load = Signal(int, object)  # to the worker (queued across threads)
    _run = Signal(int, object)
    _flow = Signal(int, object)
    _neurons = Signal(int, object)
    _job = Signal(int, object)

    def __init__(self, backend: EngineBackend | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("engine")
        self._worker = EngineWorker(backend or real_backend())
        self._worker.moveToThread(self._thread)
        self._load.connect(self._worker.load_model)
        self._run.connect(self._worker.run_query)
        self._job.connect(self._worker.run_job)
        self._worker.jobItem.connect(self._on_job_item)
        self._worker.jobFinished.connect(self._on_job_finished)
        # the flow graph's worker has a thread of its own and shares the loaded models
        self._flow_thread = QThread()
        self._flow_thread.setObjectName("flow")
        self._flow_worker = FlowWorker(self._worker._backend, self._worker.loaded, describe_error)
        self._flow_worker.moveToThread(self._flow_thread)
        self._flow.connect(self._flow_worker.flow)
        self._neurons.connect(self._flow_worker.neurons)
        self._flow_worker.flowReady.connect(self._on_flow)
        self._flow_worker.neuronsReady.connect(self._on_neurons)
        self._flow_worker.errored.connect(self._on_errored)
        self._flow_worker.skipped.connect(self._on_skipped)
        self._worker.modelLoaded.connect(self._on_loaded)
        self._worker.progress.connect(self._on_progress)
        self._worker.partial.connect(self._on_partial)
        self._worker.finished.connect(self._on_finished)
        self._worker.errored.connect(self._on_errored)
        self._worker.skipped.connect(self._on_skipped)
        self._next_id = 0
        self._load_id: int | None = None
        self._run_id: int | None = None
        self._request: QueryRequest | None = None
        self._side: dict[int, object] = {}  # id -> the newest FlowRequest / NeuronRequest (one of each)
        self._jobs: dict[int, JobRequest] = {}  # id -> the newest job of its kind
        self._thread.start()
        self._flow_thread.start()

    # ---- requests (GUI thread) --------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def load_model(self, entry) -> int:
        self._load_id = self._new_id()
        self.modelLoading.emit(entry.name)
        self._load.emit(self._load_id, entry)
        return self._load_id

    def run(self, request: QueryRequest) -> int:
        """Start a query; a running one is superseded (cancelled, its replies dropped)."""
        if self._request is not None:
            self._request.cancel.set()
        self._run_id = self._new_id()
        self._request = request
        self._run.emit(self._run_id, request)
        return self._run_id

    def compute_flow(self, request: FlowRequest) -> int:
        """Compute a flow graph; an older flow request still waiting is dropped."""
        return self._send_side(request, self._flow)

    def cancel_flow(self) -> None:
        """Stop the flow graph being computed (at its next layer boundary) and drop any waiting."""
        for request in self._side.values():
            if isinstance(request, FlowRequest):
                request.cancel.set()

    def compute_neurons(self, request: NeuronRequest) -> int:
        """Read an MLP node's top neurons; an older neuron request still waiting is dropped."""
        return self._send_side(request, self._neurons)

    def _send_side(self, request, signal) -> int:
        for old_id, old in list(self._side.items()):
            if type(old) is type(request):
                old.cancel.set()
                del self._side[old_id]
        req_id = self._new_id()
        self._side[req_id] = request
        signal.emit(req_id, request)
        return req_id

    def run_job(self, request: JobRequest) -> int:
        """Start a job on the engine thread (after the query or load in hand); a job of the same
        kind still running is cancelled and its replies dropped."""
        self.cancel_job(request.kind)
        req_id = self._new_id()
        self._jobs[req_id] = request
        self._job.emit(req_id, request)
        return req_id

    def cancel_job(self, kind: str) -> None:
        for old_id, old in list(self._jobs.items()):
            if old.kind == kind:
                old.cancel.set()
                del self._jobs[old_id]

    def can_run_job(self, kind: str) -> bool:
        return kind in self._worker._backend.jobs

    @property
    def can_flow(self) -> bool:
        return self._worker._backend.flow_graph is not None

    def cancel(self) -> None:
        """Ask the running query to stop; its partial result still arrives as runFinished."""
        if self._request is not None:
            self._request.cancel.set()

    @property
    def running(self) -> bool:
        return self._run_id is not None

    @property
    def loading(self) -> bool:
        return self._load_id is not None

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """Cancel, stop the thread's loop and wait; False if the engine is stuck in a long call."""
        self.cancel()
        for request in [*self._side.values(), *self._jobs.values()]:
            request.cancel.set()
        self._side.clear()
        self._jobs.clear()
        self._run_id = self._load_id = None
        self._thread.quit()
        self._flow_thread.quit()
        engine_done = self._thread.wait(timeout_ms)
        return self._flow_thread.wait(timeout_ms) and engine_done

    @property
    def thread(self) -> QThread:
        return self._thread

    @property
    def flow_thread(self) -> QThread:
        return self._flow_thread

    # ---- replies (delivered on the GUI thread) --------------------------------------
    def _on_loaded(self, req_id: int, info: LoadedModel) -> None:
        if req_id == self._load_id:
            self._load_id = None
            self.modelLoaded.emit(info)

    def _on_progress(self, req_id: int, done: int, total: int, elapsed: float) -> None:
        if req_id == self._run_id:
            self.runProgress.emit(done, total, elapsed)

    def _on_partial(self, req_id: int, result) -> None:
        if req_id == self._run_id:
            self.runPartial.emit(result)

    def _on_finished(self, req_id: int, result) -> None:
        if req_id == self._run_id:
            self._run_id = self._request = None
            self.runFinished.emit(result)

    def _on_flow(self, req_id: int, graph, prepared=None) -> None:
        request = self._side.pop(req_id, None)
        if request is not None:
            self.flowReady.emit(request, graph, prepared)

    def _on_neurons(self, req_id: int, readouts) -> None:
        request = self._side.pop(req_id, None)
        if request is not None:
            self.neuronsReady.emit(request, readouts)

    def _on_job_item(self, req_id: int, item, done: int, total: int) -> None:
        request = self._jobs.get(req_id)
        if request is not None:
            self.jobItem.emit(request, item, done, total)

    def _on_job_finished(self, req_id: int, answer) -> None:
        request = self._jobs.pop(req_id, None)
        if request is not None:
            self.jobFinished.emit(request, answer)

    def _on_skipped(self, req_id: int) -> None:
        self._side.pop(req_id, None)
        self._jobs.pop(req_id, None)
        if req_id == self._run_id:
            self._run_id = self._request = None
            self.runCancelled.emit()

    def _on_errored(self, req_id: int, message: str) -> None:
        side = self._side.pop(req_id, None)
        job = self._jobs.pop(req_id, None)
        if job is not None:
            self.jobFailed.emit(job, message)
        elif side is not None:
            (self.flowFailed if isinstance(side, FlowRequest) else self.neuronsFailed).emit(side, message)
        elif req_id == self._load_id:
            self._load_id = None
            self.modelFailed.emit(message)
        elif req_id == self._run_id:
            self._run_id = self._request = None
            self.runFailed.emit(message)
