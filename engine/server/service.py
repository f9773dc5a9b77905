"""The engine's side of the protocol: one priority queue of requests, newest wins per kind.

Messages from the window (docs/design.md, "The engine process"):
  {"op": "request", "id": n, "kind": k, "body": {...}}   k in PRIORITY
  {"op": "cancel", "id": n}                               stop request n where its cancel is checked
Replies: {"id": n, "reply": r, "body": ...} with r one of
  "started" (a query's empty result: what the samples will be compared with), "chunk" (a query's
  new samples), "item" (a piece of a job's answer, with done and total), "done" (the answer),
  "error" (one line), "skipped" (cancelled or superseded before it ran).

The queue orders requests by PRIORITY (an interactive query before a flow graph before the
colouring before a map) and, within a priority, by arrival. A new request cancels every older one
of its kind: a queued one is answered "skipped", a running one stops at its next check. WORKERS
threads drain the queue, so a long map or flow graph never keeps a query waiting for its end.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from engine.errors import USER_ERRORS, Cancelled
from engine.server.replies import LoadedModel

log = logging.getLogger(__name__)

# "read": a paper JSON file's bytes read into a result (File > Import; no model needed)
PRIORITY = {"load": 0, "query": 1, "read": 2, "neurons": 3, "flow": 4, "colour": 5, "patch": 6, "map": 7, "train": 8}
SAVING_KINDS = ("train",)  # requests that, cancelled, still write their state: the engine waits for them
WORKERS = 2
MAX_LOADED = 2  # models kept loaded; switching back is instant, and a GPT-2 small is half a gigabyte
MAX_GRAPHS = 4  # flow graphs kept for the MLP drill-down (their neuron activations stay here)


@dataclass(order=True)
class Request:
    priority: int
    seq: int
    id: int = field(compare=False)
    kind: str = field(compare=False)
    body: dict = field(compare=False)
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)


def describe_error(e: BaseException) -> str:
    """One readable line; unexpected errors also leave their traceback in the log."""
    if isinstance(e, USER_ERRORS):
        return str(e)
    if isinstance(e, MemoryError):
        return "Out of memory: try fewer candidates or a smaller model."
    log.error("unexpected error in the engine", exc_info=e)
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if text:
        return f"{type(e).__name__}: {text}"
    return f"Unexpected {type(e).__name__} in the engine (details in its log)"


class EngineService:
    """Requests in through handle() (the reader's thread), replies out through send(id, reply, body)."""

    def __init__(self, backend, send):
        self._backend = backend
        self._send = send
        self._cond = threading.Condition()
        self._queue: list[Request] = []
        self._live: dict[int, Request] = {}  # queued or running, by id
        self._seq = itertools.count()
        self._models: OrderedDict[str, tuple] = OrderedDict()  # key -> (stamp, Inverter), most recent last
        self._loading: dict[str, threading.Event] = {}  # key -> set when its load ends
        self._graphs: OrderedDict[int, object] = OrderedDict()  # flow request id -> FlowGraph
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"engine-{i}", daemon=True) for i in range(WORKERS)]
        for t in self._threads:
            t.start()

    # ---- from the reader --------------------------------------------------------------
    def handle(self, message: dict) -> None:
        op = message.get("op")
        if op == "cancel":
            with self._cond:
                request = self._live.get(message.get("id"))
            if request is not None:
                request.cancel.set()
            return
        if op != "request" or message.get("kind") not in PRIORITY or not isinstance(message.get("id"), int):
            log.warning("ignored a message the engine does not know: %r", {k: message.get(k) for k in ("op", "kind")})
            return
        kind = message["kind"]
        request = Request(PRIORITY[kind], next(self._seq), message["id"], kind, message.get("body") or {})
        skipped = []
        with self._cond:
            if kind == "load":  # from now on, a request for this model waits for the load's end
                self._loading.setdefault(self._load_key(request), threading.Event()).clear()
            for old in list(self._live.values()):  # newest wins per kind
                if old.kind == kind:
                    old.cancel.set()
                    if old in self._queue:
                        self._queue.remove(old)
                        del self._live[old.id]
                        skipped.append(old.id)
                        if kind == "load" and self._load_key(old) != self._load_key(request):
                            self._loading[self._load_key(old)].set()  # it will not load: nobody waits for it
            heapq.heapify(self._queue)
            heapq.heappush(self._queue, request)
            self._live[request.id] = request
            self._cond.notify()
        for old_id in skipped:
            self._send(old_id, "skipped", None)

    def stop(self, wait_s: float = 0.0) -> None:
        """Cancel everything; then wait up to wait_s for running requests of SAVING_KINDS (a training
        run saves its checkpoint at its next step)."""
        with self._cond:
            self._stopped = True
            for request in self._live.values():
                request.cancel.set()
            self._cond.notify_all()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._cond:
                if not any(r.kind in SAVING_KINDS for r in self._live.values()):
                    return
            time.sleep(0.05)

    # ---- workers ----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                request = heapq.heappop(self._queue)
            try:
                if request.cancel.is_set():
                    self._send(request.id, "skipped", None)
                else:
                    self._run(request)
            except Cancelled:
                self._send(request.id, "skipped", None)
            except BaseException as e:  # noqa: BLE001 - every failure must reach the window as a line
                self._send(request.id, "error", describe_error(e))
            finally:
                with self._cond:
                    self._live.pop(request.id, None)
                if request.kind == "load":
                    self._loading[self._load_key(request)].set()

    @staticmethod
    def _load_key(request: Request) -> str:
        return str(request.body["entry"].path)

    def _run(self, request: Request) -> None:
        body, rid = request.body, request.id
        if request.kind == "load":
            self._send(rid, "done", self._load(body["entry"]))
            return
        if request.kind == "read":
            from engine.store.paper_json import paper_json_from_bytes

            p = body.get("params", {})
            self._send(rid, "done", paper_json_from_bytes(bytes(p["data"]), p["name"], epsilon=p["epsilon"]))
            return
        if request.kind == "train":
            if self._backend.train is None:
                raise RuntimeError("this engine cannot train decoders")
            answer = self._backend.train(body.get("params", {}), self._reporter(request), request.cancel)
            self._send(rid, "done", answer)
            return
        inv = self._inverter(body["model_key"], request.cancel)
        if request.kind == "query":
            self._query(request, inv)
        elif request.kind == "flow":
            if self._backend.flow_graph is None:
                raise RuntimeError("this engine cannot compute flow graphs")
            graph = self._backend.flow_graph(inv, body["text"], body.get("target"), body.get("top_k", 10),
                                             cancel=request.cancel)
            self._graphs[rid] = graph
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
            self._send(rid, "done", graph)
        elif request.kind == "neurons":
            self._neurons(request, inv)
        else:
            self._job(request, inv)

    def _load(self, entry) -> LoadedModel:
        from engine.store.folders import decoder_stamp, no_decoder_message

        start = time.monotonic()
        key, stamp = str(entry.path), decoder_stamp(entry)
        cached = self._models.get(key)
        if cached is None or cached[0] != stamp:  # a decoder trained since: load it
            inv = self._backend.load_inverter(entry)
            if self._backend.warm_up is not None:
                try:
                    self._backend.warm_up(inv)
                except Exception as e:  # noqa: BLE001 - a failed warm-up only costs speed
                    log.warning("engine warm-up skipped: %s", describe_error(e))
            self._models[key] = (stamp, inv)
            while len(self._models) > MAX_LOADED:
                self._models.popitem(last=False)  # the least recently chosen model goes
        self._models.move_to_end(key)
        inv = self._models[key][1]
        no_query = "" if getattr(inv, "can_query", True) else no_decoder_message(entry)
        return LoadedModel(entry.name, key, entry.task, [s.short for s in getattr(inv, "sites", [])],
                           time.monotonic() - start, no_query,
                           bool(getattr(inv, "has_decoder", True)), str(getattr(inv, "device", "cpu")))

    def _inverter(self, key: str, cancel: threading.Event):
        """The loaded model; waits while it is still loading (a query sent right after its load)."""
        loading = self._loading.get(key)
        while loading is not None and not loading.wait(0.05):
            if cancel.is_set():
                raise Cancelled()
        cached = self._models.get(key)
        if cached is None:
            raise RuntimeError("the model is not loaded (see the message about loading it)")
        return cached[1]

    def _query(self, request: Request, inv) -> None:
        from engine.server.query_header import result_header

        body, rid, cancel = request.body, request.id, request.cancel
        self._send(rid, "started", result_header(inv, body["text"], body["site"], body["position"], body["options"]))

        def on_chunk(chunk) -> None:
            if not cancel.is_set():
                self._send(rid, "chunk", chunk)

        result = self._backend.run_query(inv, body["text"], body["site"], body["position"], body["options"],
                                         on_chunk, cancel)
        self._send(rid, "done", result)  # a cancelled query's partial result still comes back

    def _neurons(self, request: Request, inv) -> None:
        if self._backend.top_neurons is None:
            raise RuntimeError("this engine cannot read MLP neurons")
        graph = self._graphs.get(request.body["graph_id"])
        if graph is None:
            raise RuntimeError("that flow graph is no longer in the engine: recompute it")
        readouts = self._backend.top_neurons(inv, graph, request.body["layer"], request.body["position"])
        ids = {t for r in readouts for t, _ in (*r.promoted, *r.suppressed)}
        self._send(request.id, "done", {"readouts": readouts, "vocab": {t: graph.label(t) for t in sorted(ids)}})

    def _job(self, request: Request, inv) -> None:
        fn = self._backend.jobs.get(request.kind)
        if fn is None:
            raise RuntimeError(f"this engine cannot run {request.kind!r} jobs")
        self._send(request.id, "done", fn(inv, request.body.get("params", {}), self._reporter(request), request.cancel))

    def _reporter(self, request: Request):
        """report(item, done, total): a piece of the answer, sent while nobody has cancelled."""

        def report(item, done: int, total: int) -> None:
            if not request.cancel.is_set():
                self._send(request.id, "item", {"item": item, "done": done, "total": total})

        return report
