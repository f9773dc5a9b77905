"""The flow graph of the current query, drawn over the model diagram (docs/design.md §4).

Whenever the model or a valid query text changes, a FlowRequest goes to the engine thread after
DEBOUNCE_MS of quiet (typing does not queue a forward pass per key); only the newest request's
graph is shown. The threshold slider, the route-only toggle and influence pruning only redraw:
the graph holds every edge. The node detail pane follows the selected site and position.
"""
from __future__ import annotations

import json

from PySide6.QtCore import QObject, QTimer, Signal

from app.flow.overlay import flow_overlay, flow_readouts, route_end, route_nodes
from app.retire import Retirer
from app.workers.flow_request import FlowRequest, NeuronRequest
from engine.flow.prune import influence_index, prune_by_influence, pruned_json

DEBOUNCE_MS = 300


class FlowView(QObject):
    graphShown = Signal(object)  # the FlowGraph now drawn, whole
    neuronsShown = Signal(object)  # [NeuronReadout] now in the detail pane
    heldChanged = Signal(bool)  # another view draws over the diagram (True) or the graph is back (False)

    def __init__(self, engine, diagram, controls, pane, parent=None):
        super().__init__(parent)
        self.engine, self.diagram, self.controls, self.pane = engine, diagram, controls, pane
        self.graph = None  # the FlowGraph on screen
        self._graph_key: tuple | None = None  # FlowRequest.key it answered
        self.shown_edges: list = []  # the FlowEdges drawn now
        self.pruned = None  # the PrunedGraph drawn, when pruning by influence
        self._indexes: dict = {}  # output node -> influence_index(self.graph, output)
        self._readouts: tuple = (None, None)  # (graph, flow_readouts(graph)): made once per graph
        self._retirer = Retirer(self)  # old readouts are let go a piece at a time
        self._announce = None  # a graph whose overlay is still being drawn: graphShown once it is
        self._held = False  # another view (the information map) draws over the diagram meanwhile
        diagram.overlayDrawn.connect(self._on_overlay_drawn)
        self._model_key: str | None = None
        self._text: str | None = None
        self._pending: FlowRequest | None = None  # sent, not answered yet
        self._selection: tuple[str, int] | None = None
        self._route_position: int | None = None  # the window's selected position: where the route ends
        self._neuron_request: NeuronRequest | None = None
        self._neurons: dict[tuple, list] = {}  # NeuronRequest.key -> readouts, for the graph shown
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.request_now)
        controls.thresholdChanged.connect(lambda _: self.redraw())
        controls.routeOnlyChanged.connect(lambda _: self.redraw())
        controls.pruningChanged.connect(self.redraw)
        controls.targetChanged.connect(lambda _: self._schedule())
        controls.stopRequested.connect(self.cancel_graph)
        controls.computeRequested.connect(self.request_now)
        engine.flowReady.connect(self._on_flow)
        engine.flowFailed.connect(self._on_flow_failed)
        engine.neuronsReady.connect(self._on_neurons)
        engine.neuronsFailed.connect(self._on_neurons_failed)

    def stop(self) -> None:
        """No more requests (the window is closing)."""
        self._timer.stop()
        self._model_key = None

    # ---- what to compute ----------------------------------------------------------------
    def set_model(self, model_key: str | None, vocabulary: list[str] | None = None) -> None:
        """A model was chosen (None: none loaded yet); its graph is computed once it is loaded."""
        if model_key != self._model_key:
            self._clear("")
        self._model_key = model_key
        if vocabulary is not None:
            self.controls.set_vocabulary(vocabulary)
        self._schedule()

    def set_query(self, text: str | None) -> None:
        """The query text when it is valid, else None (the graph is taken down)."""
        if text == self._text:
            return
        self._text = text
        if text is None:
            self._timer.stop()
            self._clear("fix the query to see its flow graph")
            return
        if self.graph is not None:
            self._clear("")  # the old graph belongs to another input: never draw it over the new tokens
        self._schedule()

    def wanted(self) -> FlowRequest | None:
        if not self._model_key or self._text is None or not self.engine.can_flow:
            return None
        return FlowRequest(self._model_key, self._text, self.controls.target_token(),
                           route_position=self._route_position)

    def _schedule(self) -> None:
        if self.wanted() is not None:
            self.controls.set_status("computing the flow graph…")
            self.controls.set_computing("computing")
            self._timer.start()

    def cancel_graph(self) -> None:
        """The user's Stop: the graph being computed stops at its next layer; Compute asks again."""
        self._timer.stop()
        self.engine.cancel_flow()
        self._pending = None
        self.controls.set_status("flow graph stopped")
        self.controls.set_computing("stopped")

    def request_now(self) -> int | None:
        """Send the wanted request at once (the debounce timer calls this)."""
        self._timer.stop()
        request = self.wanted()
        if request is None:
            return None
        if self.graph is not None and self._graph_key == request.key:
            self.controls.set_status(self._summary())
            self.controls.set_computing(None)
            return None
        self._pending = request
        self.controls.set_status("computing the flow graph…")
        self.controls.set_computing("computing")
        return self.engine.compute_flow(request)

    # ---- replies ---------------------------------------------------------------------------
    def _on_flow(self, request: FlowRequest, graph, prepared=None) -> None:
        wanted = self.wanted()
        if wanted is None or request.key != wanted.key:
            return  # the query or model changed since: a newer request is on its way
        self._pending = None
        self.controls.set_computing(None)
        self.graph, self._graph_key = graph, request.key
        self._indexes = dict(prepared.indexes) if prepared is not None else {}
        old = self._readouts[1]
        if prepared is not None:  # made on the flow thread (overlay.prepare_graph)
            self._readouts = (graph, prepared.readouts)
        self._neurons.clear()
        self.redraw()  # the diagram lets go of the old overlay here: only this view reads `old` now
        if old is not None and old is not self._readouts[1]:
            self._retirer.retire(old.labels, old.colors, old.tooltips, old.dim)
        if self.diagram.overlay_pending():  # a large graph is drawn over a few turns of the event loop
            self._announce = graph
        else:
            self.graphShown.emit(graph)

    def _on_overlay_drawn(self) -> None:
        graph, self._announce = self._announce, None
        if graph is not None and graph is self.graph:
            self.graphShown.emit(graph)

    def _on_flow_failed(self, request: FlowRequest, message: str) -> None:
        wanted = self.wanted()
        if wanted is not None and request.key == wanted.key:
            self._pending = None
            self.controls.set_computing(None)
            self.controls.set_status(f"flow graph failed: {message}", error=True)

    def hold(self, held: bool) -> None:
        """While held, the flow graph keeps computing but leaves the diagram's overlay alone (the
        information map is drawn there); released, it draws its graph again."""
        if held == self._held:
            return
        self._held = held
        self.heldChanged.emit(held)
        if not held:
            if self.graph is not None:
                self.redraw()
            else:
                self.diagram.set_overlay(None)

    def image(self):
        """The flow graph over the whole diagram as a QImage, without the panel's controls. While a
        map or the causal check holds the diagram, their colours are set aside for the picture
        (it is the flow graph's) and put back after it."""
        if not self._held or self.graph is None:
            return self.diagram.render_image()
        other = self.diagram.overlay()
        self._held = False
        try:
            self.redraw()
            return self.diagram.render_image()
        finally:
            self._held = True
            self.diagram.set_overlay(other, refresh=True)
            self.diagram.finish_overlay()

    def _clear(self, status: str) -> None:
        self.graph, self._graph_key, self.shown_edges = None, None, []
        self._indexes = {}
        self._neurons.clear()
        if not self._held:
            self.diagram.set_overlay(None)
        self.controls.set_status(status)
        self.controls.set_computing(None)  # a request scheduled after this shows Stop again
        if self._selection is not None:
            self.pane.show_message("Computing the flow graph…" if not status else status)

    # ---- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        """Edges at or above the slider's threshold, or the route only, over the diagram."""
        graph = self.graph
        if graph is None:
            return
        threshold = self.controls.threshold()
        self.pruned = None
        if self.controls.pruned():
            output = self.route_output()
            index = self._indexes.get(output)
            if index is None:  # another position chosen since: a slider move then changes only the shares
                index = self._indexes[output] = influence_index(graph, output)
            self.pruned = prune_by_influence(graph, output, node_share=self.controls.node_share(), index=index)
            self.shown_edges, on_route = self.pruned.edges, set(self.pruned.nodes)
        elif self.controls.route_only():
            output = self.route_output()
            self.shown_edges = graph.route_to(output, threshold=threshold)
            on_route = route_nodes(self.shown_edges) | {output}
        else:
            self.shown_edges, on_route = graph.edges_above(threshold), None
        if self._readouts[0] is not graph:
            self._readouts = (graph, flow_readouts(graph))
        if not self._held:
            self.diagram.set_overlay(flow_overlay(graph, self.shown_edges, on_route, readouts=self._readouts[1]))
        self.controls.set_status(self._summary())
        if self._selection is not None and self.pane.isVisible():
            self.show_detail(*self._selection)

    def route_output(self) -> tuple:
        """The route's end: the final residual stream at the window's selected position (the
        last one when none is set), so the route answers for the token the user is looking at."""
        return route_end(self.graph, self._route_position)

    def set_route_position(self, position: int | None) -> None:
        """The position the window has selected; the route ends there."""
        if position != self._route_position:
            self._route_position = position
            if self.graph is not None and (self.controls.route_only() or self.controls.pruned()):
                self.redraw()
            elif self.graph is not None:
                self.controls.set_status(self._summary())  # it names where the route ends

    def _summary(self) -> str:
        g = self.graph
        if self.pruned is not None:
            return self.pruned.summary()
        site, pos = self.route_output()
        what = "route edges" if self.controls.route_only() else "edges"
        return f"{len(self.shown_edges)} {what} · route → {site} @ {pos} '{g.position_labels[pos]}'"

    # ---- the detail pane ------------------------------------------------------------------
    def show_detail(self, short: str, position: int) -> None:
        """Show (short, position) in the detail pane (now, or once the graph arrives)."""
        self._selection = (short, position)
        if self.graph is None:
            self.pane.key = self._selection
            self.pane.show_message("Computing the flow graph…" if self.wanted() else
                                   "The flow graph appears once a model is loaded and the query is valid.")
            return
        node = self.pane.show_node(self.graph, short, position, self.controls.threshold())
        if node is not None and node.kind == "mlp":
            self._ask_neurons(node.site.layer, position)

    def _ask_neurons(self, layer: int, position: int) -> None:
        request = NeuronRequest(self._model_key, self.graph, layer, position)
        if request.key in self._neurons:
            self.pane.set_neurons(self.graph, self._neurons[request.key])
            self.neuronsShown.emit(self._neurons[request.key])
            return
        if self._neuron_request is not None and self._neuron_request.key == request.key:
            return  # already asked
        self._neuron_request = request
        self.engine.compute_neurons(request)

    def _on_neurons(self, request: NeuronRequest, readouts) -> None:
        if request.graph is not self.graph:
            return
        self._neuron_request = None
        self._neurons[request.key] = readouts
        node = self.pane.node
        if node is not None and node.kind == "mlp" and (node.site.layer, node.position) == (request.layer,
                                                                                            request.position):
            self.pane.set_neurons(self.graph, readouts)
            self.neuronsShown.emit(readouts)

    def _on_neurons_failed(self, request: NeuronRequest, message: str) -> None:
        if request.graph is self.graph:
            self._neuron_request = None
            self.pane.set_neurons_status(f"Could not read the neurons: {message}", error=True)

    # ---- export ---------------------------------------------------------------------------
    def export_json(self) -> str:
        """The graph as JSON with exactly the edges on screen (engine.flow.graph.FlowGraph.to_json + a 'view').

        "edges" are the edges drawn: those at or above the slider's threshold, or, in route-only
        mode, the route's. "route" and "threshold" are recomputed at the slider's threshold, and
        "view" records how the file was made, so FlowGraph.from_json still reads it.
        """
        from dataclasses import replace

        graph, threshold = self.graph, self.controls.threshold()
        if graph is None:
            raise ValueError("no flow graph yet")
        route = graph.route_to(self.route_output(), threshold=threshold)
        doc = json.loads(replace(graph, threshold=threshold, route=route).to_json(threshold=threshold))
        route_only = self.controls.route_only()
        if route_only:
            doc["edges"] = doc["route"]
        edges = "the route to the output node" if route_only else "every edge >= edge_threshold"
        if self.pruned is not None:
            doc = pruned_json(doc, self.pruned)
            edges = doc["pruned"]["edges"]
        doc["view"] = {"app": "InversionView Studio", "edge_threshold": threshold, "route_only": route_only,
                       "edges": edges, "node_share": self.pruned.node_share if self.pruned else None,
                       "edge_share": self.pruned.edge_share if self.pruned else None,
                       "target": self.controls.target_token() or "the model's prediction at each position"}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def export_neuronpedia(self, slug: str, scan: str) -> str:
        """The graph pruned by influence (the slider's share, or 80% when not pruning on screen)
        as graph JSON for attribution-graph viewers (engine/flow/neuronpedia.py)."""
        from engine.flow.neuronpedia import neuronpedia_graph

        if self.graph is None:
            raise ValueError("no flow graph yet")
        pruned = self.pruned or prune_by_influence(self.graph, self.route_output())
        doc = neuronpedia_graph(self.graph, pruned, slug=slug, scan=scan, prompt=self._text or "")
        return json.dumps(doc, ensure_ascii=False, indent=1)
