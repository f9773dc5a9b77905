"""The window's handle on the engine process: requests out, replies in as Qt signals.

The engine runs in a process of its own (engine/server/; docs/design.md, "The engine process"), so
torch never shares the window's interpreter: no import, load or collection pass of the engine's
can hold the GUI thread, and a crash in torch is an event here, not the window's exit. The link's
reader thread decodes replies and does the per-reply work that is not the GUI's (ranking a query's
samples as chunks arrive, preparing a flow graph for drawing); the GUI thread gets finished
values through queued signals.

One rule for every kind of request: the newest request of a kind wins. The engine cancels older
ones of the kind, and here replies to any but the newest are dropped (`_newest`).
"""
from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, Signal

from app.workers.engine_link import EngineLink, engine_log_path
from app.workers.flow_request import FlowRequest, NeuronRequest
from app.workers.job_request import JOB_KINDS, JobRequest
from app.workers.query_request import QueryRequest
from engine.query.types import QueryAccumulator
from engine.server.service import MAX_GRAPHS

log = logging.getLogger(__name__)

# a query's ranked samples are re-ranked for the GUI at most this often: the window paints partial
# results at most every REPAINT_MS (app/query/runner.py), so ranking more often is work thrown away
PARTIAL_EVERY_S = 0.1
RESTARTS = 3  # engine restarts allowed within RESTART_WINDOW_S before the window gives up
RESTART_WINDOW_S = 60.0


class EngineClient(QObject):
    modelLoading = Signal(str)  # model name
    modelLoaded = Signal(object)  # LoadedModel
    modelFailed = Signal(str)
    runProgress = Signal(int, int, float)  # done, total, elapsed
    runPartial = Signal(object)  # QueryResult so far
    runFinished = Signal(object)  # QueryResult (complete=False when cancelled)
    runFailed = Signal(str)
    runCancelled = Signal()  # cancelled before the engine started it (e.g. while a model loaded)
    flowReady = Signal(object, object, object)  # FlowRequest, FlowGraph, PreparedGraph or None
    flowFailed = Signal(object, str)  # FlowRequest, message
    neuronsReady = Signal(object, object)  # NeuronRequest, [NeuronReadout]
    neuronsFailed = Signal(object, str)  # NeuronRequest, message
    jobItem = Signal(object, object, int, int)  # JobRequest, streamed piece, done, total
    jobFinished = Signal(object, object)  # JobRequest, answer
    jobFailed = Signal(object, str)  # JobRequest, message
    engineLost = Signal(str)  # the engine stopped: one line saying what happened and what was done

    _reply = Signal(object, str, int, object)  # link, reply, request id, payload (reader thread -> GUI thread)
    _ended = Signal(object, str)  # link, why it ended

    def __init__(self, backend=None, parent: QObject | None = None, command: list[str] | None = None):
        super().__init__(parent)
        self._backend, self._command = backend, command
        self._reply.connect(self._on_reply)
        self._ended.connect(self._on_ended)
        self._next_id = 0
        self._pending: dict[int, tuple[str, object]] = {}  # id -> (kind, request) awaiting an answer
        self._newest: dict[str, int] = {}  # kind -> the id whose replies count
        self._acc: dict[int, QueryAccumulator] = {}  # reader thread: a query's ranked samples so far
        self._route: dict[int, int | None] = {}  # flow id -> the route's end, for prepare_graph
        # the engine's last graphs (it keeps MAX_GRAPHS for the MLP drill-down): (FlowGraph, the flow
        # request that made it); holding the graph keeps its id from being reused by another
        self._graphs: list[tuple[object, int]] = []
        self._entry = None  # the model last asked for: reloaded after a restart
        self._deaths: list[float] = []
        self._link: EngineLink | None = None  # None once shut down: requests are ignored
        self._links: list[EngineLink] = []
        self._start_link()

    def _start_link(self) -> None:
        def read(header: dict) -> None:
            try:
                self._read(link, header)
            except RuntimeError:  # the window (and this client) has gone while a reply arrived
                pass

        def ended(why: str) -> None:
            try:
                self._ended.emit(link, why)
            except RuntimeError:
                pass

        link = EngineLink(read, ended, command=self._command, backend=self._backend)
        self._link = link
        self._links = [*self._links[-1:], link]  # the last two, for engine_alive after close
        link.start()

    # ---- requests (GUI thread) ---------------------------------------------------------
    def _send(self, kind: str, body: dict, request=None) -> int:
        self._next_id += 1
        rid = self._next_id
        if self._link is None:
            return rid  # the window is closing: nobody will read an answer
        old = self._newest.get(kind)
        if old is not None:
            self._pending.pop(old, None)  # the engine cancels it; its replies are dropped here
        self._newest[kind] = rid
        self._pending[rid] = (kind, request)
        self._link.send({"op": "request", "id": rid, "kind": kind}, body)
        return rid

    def _cancel(self, kind: str) -> None:
        rid = self._newest.get(kind)
        if rid in self._pending and self._link is not None:
            self._link.send({"op": "cancel", "id": rid})

    def load_model(self, entry) -> int:
        self._entry = entry
        self.modelLoading.emit(entry.name)
        return self._send("load", {"entry": entry}, entry)

    def run(self, request: QueryRequest) -> int:
        """Start a query; a running one is superseded (cancelled, its replies dropped)."""
        return self._send("query", {"model_key": request.model_key, "text": request.text, "site": request.site,
                                    "position": request.position, "options": request.options}, request)

    def cancel(self) -> None:
        """Ask the running query to stop; its partial result still arrives as runFinished."""
        self._cancel("query")

    def compute_flow(self, request: FlowRequest) -> int:
        rid = self._send("flow", {"model_key": request.model_key, "text": request.text, "target": request.target,
                                  "top_k": request.top_k}, request)
        self._route[rid] = request.route_position
        return rid

    def cancel_flow(self) -> None:
        self._cancel("flow")

    def compute_neurons(self, request: NeuronRequest) -> int:
        graph_id = next((rid for graph, rid in self._graphs if graph is request.graph), -1)
        return self._send("neurons", {"model_key": request.model_key, "graph_id": graph_id, "layer": request.layer,
                                      "position": request.position}, request)

    def run_job(self, request: JobRequest) -> int:
        """A map, patching run or colouring; a job of the same kind still running is cancelled."""
        return self._send(request.kind, {"model_key": request.model_key, "params": request.params}, request)

    def cancel_job(self, kind: str) -> None:
        self._cancel(kind)
        self._pending.pop(self._newest.get(kind), None)

    def can_run_job(self, kind: str) -> bool:
        return kind in (self._backend.jobs if self._backend is not None else JOB_KINDS)

    @property
    def can_flow(self) -> bool:
        return self._backend is None or self._backend.flow_graph is not None

    def waiting(self, kind: str) -> bool:
        """Is a request of this kind ("flow", "map", ...) still to be answered?"""
        return self._newest.get(kind) in self._pending

    @property
    def running(self) -> bool:
        return self._newest.get("query") in self._pending

    @property
    def loading(self) -> bool:
        return self._newest.get("load") in self._pending

    @property
    def engine_alive(self) -> bool:
        """Is an engine this client started still running (False once closed and ended)?"""
        return any(link.alive for link in self._links)

    @property
    def engine_pid(self) -> int | None:
        return self._link.pid if self._link is not None else None

    def kill_engine(self) -> None:
        """Stop the engine process as a crash would (tests, benchmarks)."""
        if self._link is not None:
            self._link.kill()

    def shutdown(self, timeout_ms: int = 1000) -> bool:
        """End the engine: its pipe closes and it exits; nothing here waits for torch."""
        self._pending.clear()
        link, self._link = self._link, None
        if link is not None:
            link.close(wait_s=min(timeout_ms / 1000, 0.5))
        return True

    # ---- replies: the reader thread -----------------------------------------------------
    def _read(self, link: EngineLink, header: dict) -> None:
        reply, rid, body = header.get("reply", ""), header.get("id", 0), header.get("body")
        if reply == "started":
            self._acc[rid] = QueryAccumulator(body)
            return
        if reply == "chunk":
            acc = self._acc.get(rid)
            if acc is None:
                return
            acc.add(body)
            self._reply.emit(link, "progress", rid, (body.done, body.total, body.elapsed))
            now = time.monotonic()
            if now - getattr(acc, "sent", 0.0) >= PARTIAL_EVERY_S or body.done >= body.total:
                acc.sent = now
                self._reply.emit(link, "partial", rid, acc.result(complete=False))
            return
        if reply in ("done", "error", "skipped"):
            self._acc.pop(rid, None)
        if rid in self._route and reply in ("done", "error", "skipped"):
            route_position = self._route.pop(rid)
            if reply == "done":  # drawn from (graph, its prepared readouts)
                body = (body, self._prepare(body, route_position) if type(body).__name__ == "FlowGraph" else None)
        self._reply.emit(link, reply, rid, body)

    @staticmethod
    def _prepare(graph, route_position):
        """What each redraw of the graph reuses, made here rather than on the GUI thread (a
        GPT-2-sized graph's readouts and influence took 90 ms there)."""
        from app.flow.overlay import prepare_graph

        return prepare_graph(graph, route_position)

    # ---- replies: the GUI thread --------------------------------------------------------
    def _on_reply(self, link, reply: str, rid: int, body) -> None:
        if link is not self._link or rid not in self._pending:
            return  # an older engine's, or a request nobody waits for any more
        kind, request = self._pending[rid]
        if reply == "progress":
            self.runProgress.emit(*body)
        elif reply == "partial":
            self.runPartial.emit(body)
        elif reply == "item":
            self.jobItem.emit(request, body["item"], body["done"], body["total"])
        elif reply == "done":
            del self._pending[rid]
            self._done(kind, request, rid, body)
        elif reply == "error":
            del self._pending[rid]
            self._failed(kind, request, body)
        elif reply == "skipped":
            del self._pending[rid]
            if kind == "query":
                self.runCancelled.emit()

    def _done(self, kind: str, request, rid: int, body) -> None:
        if kind == "load":
            self.modelLoaded.emit(body)
        elif kind == "query":
            self.runFinished.emit(body)
        elif kind == "flow":
            graph, prepared = body
            self._graphs = [*self._graphs[-(MAX_GRAPHS - 1):], (graph, rid)]
            self.flowReady.emit(request, graph, prepared)
        elif kind == "neurons":
            request.graph.vocab.update(body["vocab"])  # the labels of the tokens the neurons push
            self.neuronsReady.emit(request, body["readouts"])
        else:
            self.jobFinished.emit(request, body)

    def _failed(self, kind: str, request, message: str) -> None:
        if kind == "load":
            self.modelFailed.emit(f"Could not load model {request.name!r}: {message}")
        elif kind == "query":
            self.runFailed.emit(message)
        elif kind == "flow":
            self.flowFailed.emit(request, message)
        elif kind == "neurons":
            self.neuronsFailed.emit(request, message)
        else:
            self.jobFailed.emit(request, message)

    def _on_ended(self, link, why: str) -> None:
        """The engine has gone (killed, crashed, out of memory): say so, start another, reload the model."""
        if link is not self._link:
            return  # one we closed
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S] + [now]
        pending, self._pending = self._pending, {}
        restart = len(self._deaths) <= RESTARTS and link.hello is not None and "protocol" not in why
        line = (f"The engine stopped: {why}. " + ("Restarted it" + (" and reloading the model" if self._entry else "")
                if restart else "It was not restarted") + f" (log: {engine_log_path()}).")
        log.warning(line)
        for kind, request in pending.values():
            if kind != "load":
                self._failed(kind, request, line)
        if not restart:  # the next request (another model chosen, Run) starts an engine afresh
            self._deaths.clear()
            self._link = _Deferred(self)
            self.modelFailed.emit(line if link.hello is not None and "protocol" not in why
                                  else f"Could not start the engine ({' '.join(link.command)}): {why} "
                                       f"(log: {engine_log_path()})")
            return
        self.engineLost.emit(line)
        self._start_link()
        if self._entry is not None:
            self.load_model(self._entry)


class _Deferred:
    """Stands for a link until a request needs one; then starts it and sends."""

    hello = None
    pid = None

    def __init__(self, client: EngineClient):
        self._client = client

    def send(self, header: dict, body=None) -> None:
        if header.get("op") != "request":
            return
        self._client._start_link()
        self._client._link.send(header, body)

    def close(self, wait_s: float = 0.5) -> None:
        pass

    def kill(self) -> None:
        pass
