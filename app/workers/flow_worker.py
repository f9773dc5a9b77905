"""The flow graph's worker: a QObject on the flow thread, beside the engine thread.

It shares the engine worker's loaded models (looked up by key when a request runs; the flow
view asks only for models that have loaded) and answers one request at a time. A request
superseded while it waited is skipped, and one cancelled while it runs stops at the next layer
boundary (engine/flow/build.py); every exception becomes `errored` with a readable message.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot

from app.workers.flow_request import FlowRequest, NeuronRequest
from engine.errors import Cancelled


class FlowWorker(QObject):
    flowReady = Signal(int, object, object)  # request id, FlowGraph, PreparedGraph (or None)
    neuronsReady = Signal(int, object)  # request id, [NeuronReadout]
    errored = Signal(int, str)  # request id, message
    skipped = Signal(int)  # request id: superseded before it started

    def __init__(self, backend, inverter: Callable[[str], object], describe: Callable[[BaseException], str]):
        super().__init__()
        self._backend = backend  # EngineBackend: its flow_graph and top_neurons entry points
        self._inverter = inverter  # model key -> the loaded Inverter (raises when not loaded)
        self._describe = describe

    @Slot(int, object)
    def flow(self, req_id: int, request: FlowRequest) -> None:
        """The flow graph of a query (engine.flow.flow_for_query): one forward pass."""
        if request.cancel.is_set():
            self.skipped.emit(req_id)  # a newer query text came while it waited
            return
        try:
            if self._backend.flow_graph is None:
                raise RuntimeError("this engine cannot compute flow graphs")
            graph = self._backend.flow_graph(self._inverter(request.model_key), request.text, request.target,
                                             request.top_k, cancel=request.cancel)
            self.flowReady.emit(req_id, graph, self._prepare(graph, request))
        except Cancelled:
            self.skipped.emit(req_id)  # stopped between layers: a newer request, Stop, or the window closing
        except BaseException as e:  # noqa: BLE001 - every failure must reach the user
            self.errored.emit(req_id, self._describe(e))

    @staticmethod
    def _prepare(graph, request: FlowRequest):
        """What each redraw of the graph reuses, made here rather than on the GUI thread (a
        GPT-2-sized graph's readouts and influence took 90 ms there)."""
        from app.flow.overlay import prepare_graph
        from engine.flow.graph import FlowGraph

        if not isinstance(graph, FlowGraph) or request.cancel.is_set():
            return None
        return prepare_graph(graph, request.route_position)

    @Slot(int, object)
    def neurons(self, req_id: int, request: NeuronRequest) -> None:
        """VISIT's MLP drill-down (engine.flow.top_neurons) for one node of a computed graph."""
        if request.cancel.is_set():
            self.skipped.emit(req_id)
            return
        try:
            if self._backend.top_neurons is None:
                raise RuntimeError("this engine cannot read MLP neurons")
            readouts = self._backend.top_neurons(self._inverter(request.model_key), request.graph, request.layer,
                                                 request.position)
            self.neuronsReady.emit(req_id, readouts)
        except BaseException as e:  # noqa: BLE001
            self.errored.emit(req_id, self._describe(e))
