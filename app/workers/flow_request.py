"""What the window asks the engine for the flow graph: plain data, no Qt, no torch."""
from __future__ import annotations

from dataclasses import dataclass, field

FLOW_TOP_K = 10  # logit-lens tokens kept per node: the tooltip shows 5, the detail pane 10


@dataclass
class FlowRequest:
    model_key: str  # the model folder (str of ModelEntry.path)
    text: str  # the query as typed
    target: str | None = None  # a token's text, or None: the model's own prediction at each position
    top_k: int = FLOW_TOP_K
    # where the window's route ends (None: the graph's own output): the influence on that node is
    # worked out with the graph, off the GUI thread (app/flow/overlay.py prepare_graph)
    route_position: int | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple:
        return self.model_key, self.text, self.target


@dataclass
class NeuronRequest:
    model_key: str
    graph: object = field(repr=False)  # the FlowGraph the node belongs to (its neuron activations)
    layer: int = 0
    position: int = 0

    @property
    def key(self) -> tuple:
        return id(self.graph), self.layer, self.position
