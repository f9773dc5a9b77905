"""Where each node of the model diagram sits, and what can be drawn over it later. No Qt.

Tokens go across, layers go up (docs/design.md §4). Within one token's column and one layer, the
rows from the bottom are: x{L}.pre, the heads a{L}.{H}, attn{L}, x{L}.mid, m{L}, x{L}.post.
A parallel-attention model (GPT-NeoX, GPT-J: `parallel`) has no x{L}.mid row: its MLP is wired
from x{L}.pre, and attn{L}, m{L} and x{L}.pre all feed x{L}.post.
Residual-stream nodes sit on the column's left line, the parts that write into it (heads,
attention and MLP outputs) to the right, so the residual stream reads as one vertical line.

A real model has too many heads to draw them all (GPT-2 small: 144 per token, XL: 1,200), so a
layer's heads can be collapsed into its attention node: the layer then has no head row, and the
columns narrow when no layer shows its heads. Models with few heads show them all.

A node's identity is (site short name, position): the key the flow-graph feature uses for its
nodes and edges, so its readouts and weighted edges can be laid over this drawing unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.probed.sites import name_as_read_by, parse_short

ROWS_PER_LAYER = 6  # with the heads shown; 5 with them collapsed into attn{L}; one fewer if parallel
HEADS_SHOWN_UP_TO = 4  # models with more heads than this open with every layer's heads collapsed
COLLAPSED_COLUMN = 52.0
ROW_HEIGHT = 30.0  # the smallest; the view stretches rows when it has height to spare
LEFT_MARGIN = 92.0  # room for the row names (drawn at a fixed size, whatever the zoom)
TOP_MARGIN = 8.0
TOKEN_BAND = 46.0  # token and position label under the grid

NodeKey = tuple[str, int]  # (site short name, token position)


@dataclass(frozen=True)
class NodeSpec:
    short: str
    kind: str  # resid_pre, head, attn_out, resid_mid, mlp_out, resid_post (engine.sites.KINDS)
    layer: int
    head: int | None
    row: int  # 0 = bottom row
    dx: float  # x of the node's centre from the column's left edge
    shape: str  # "circle" (residual) or "rect" (a part that writes into the residual)
    width: float
    height: float


@dataclass(frozen=True)
class DiagramLayout:
    column_width: float
    n_rows: int
    row_height: float
    nodes: tuple[NodeSpec, ...]  # one column's nodes; every token column has the same
    row_names: tuple[tuple[int, str], ...]
    collapsed: frozenset[int] = frozenset()  # layers whose heads are drawn as their attn{L} node

    def drawn_as(self, short: str) -> str:
        """The node that draws a site: a collapsed layer's head a{L}.{H} is drawn by attn{L}."""
        parsed = parse_short(short)
        if parsed and parsed[0] == "head" and parsed[1] in self.collapsed:
            return f"attn{parsed[1]}"
        return short

    def center(self, spec: NodeSpec, position: int) -> tuple[float, float]:
        return LEFT_MARGIN + position * self.column_width + spec.dx, self.row_y(spec.row)

    def row_y(self, row: int) -> float:
        return TOP_MARGIN + (self.n_rows - 1 - row) * self.row_height + self.row_height / 2

    def column_left(self, position: int) -> float:
        return LEFT_MARGIN + position * self.column_width

    def grid_bottom(self) -> float:
        return TOP_MARGIN + self.n_rows * self.row_height

    def width(self, n_tokens: int) -> float:
        return LEFT_MARGIN + n_tokens * self.column_width + 10

    def height(self) -> float:
        return self.grid_bottom() + TOKEN_BAND


def layout_for(n_layers: int, n_heads: int, row_height: float = ROW_HEIGHT,
               collapsed: frozenset[int] | set[int] = frozenset(), parallel: bool = False) -> DiagramLayout:
    """One column's nodes; `collapsed` names the layers drawn without their head row; `parallel`:
    attention and MLP both read x{L}.pre, so there is no x{L}.mid row."""
    collapsed = frozenset(L for L in collapsed if 0 <= L < n_layers)
    wide = len(collapsed) < n_layers  # some layer shows its heads: make room for them
    col = max(COLLAPSED_COLUMN, 38.0 + 14.0 * n_heads) if wide else COLLAPSED_COLUMN
    resid_x, part_x = 0.27 * col, 0.68 * col
    span_lo, span_hi = 0.44 * col, 0.94 * col
    nodes: list[NodeSpec] = []
    names: list[tuple[int, str]] = []
    base = 0
    for L in range(n_layers):
        heads = L not in collapsed
        up = 1 if heads else 0  # the rows above x{L}.pre move up by the head row, when there is one
        nodes.append(NodeSpec(f"x{L}.pre", "resid_pre", L, None, base, resid_x, "circle", 14, 14))
        if heads:
            for H in range(n_heads):
                dx = part_x if n_heads == 1 else span_lo + (span_hi - span_lo) * (H + 0.5) / n_heads
                nodes.append(NodeSpec(f"a{L}.{H}", "head", L, H, base + 1, dx, "rect", 10, 10))
            names.append((base + 1, f"a{L}.0-{n_heads - 1}" if n_heads > 1 else f"a{L}.0"))
        nodes.append(NodeSpec(f"attn{L}", "attn_out", L, None, base + 1 + up, part_x, "rect", 26, 14))
        names += [(base, f"x{L}.pre"), (base + 1 + up, f"attn{L}" if heads else f"attn{L} +{n_heads}h")]
        if not parallel:
            nodes.append(NodeSpec(f"x{L}.mid", "resid_mid", L, None, base + 2 + up, resid_x, "circle", 14, 14))
            names.append((base + 2 + up, f"x{L}.mid"))
            up += 1
        nodes.append(NodeSpec(f"m{L}", "mlp_out", L, None, base + 2 + up, part_x, "rect", 26, 14))
        nodes.append(NodeSpec(f"x{L}.post", "resid_post", L, None, base + 3 + up, resid_x, "circle", 14, 14))
        names += [(base + 2 + up, f"m{L}"), (base + 3 + up, f"x{L}.post")]
        base += 4 + up
    return DiagramLayout(col, base, row_height, tuple(nodes), tuple(sorted(names)), collapsed)


def fixed_height() -> float:
    """The part of the diagram's height that does not grow with the rows."""
    return TOP_MARGIN + TOKEN_BAND


def column_edges(n_layers: int, n_heads: int, collapsed: frozenset[int] | set[int] = frozenset(),
                 parallel: bool = False) -> list[tuple[str, str]]:
    """The fixed wiring inside one token's column, as (from short, to short); in a parallel block
    x{L}.pre feeds attention and the MLP, and both write into x{L}.post."""
    edges = []
    for L in range(n_layers):
        if L in collapsed:
            edges.append((f"x{L}.pre", f"attn{L}"))
        else:
            heads = [f"a{L}.{H}" for H in range(n_heads)]
            edges += [(f"x{L}.pre", h) for h in heads] + [(h, f"attn{L}") for h in heads]
        if parallel:
            edges += [(f"attn{L}", f"x{L}.post"), (f"x{L}.pre", f"m{L}"), (f"m{L}", f"x{L}.post"),
                      (f"x{L}.pre", f"x{L}.post")]
        else:
            edges += [(f"attn{L}", f"x{L}.mid"), (f"x{L}.pre", f"x{L}.mid"), (f"x{L}.mid", f"m{L}"),
                      (f"m{L}", f"x{L}.post"), (f"x{L}.mid", f"x{L}.post")]
        if L + 1 < n_layers:
            edges.append((f"x{L}.post", f"x{L + 1}.pre"))
    return edges


def default_collapsed(n_layers: int, n_heads: int) -> frozenset[int]:
    """Every layer collapsed when the model has many heads, none when it has few."""
    return frozenset(range(n_layers)) if n_heads > HEADS_SHOWN_UP_TO else frozenset()


@dataclass
class DiagramOverlay:
    """What the flow-graph feature draws over the diagram: per-node readouts and weighted edges."""

    labels: dict[NodeKey, str] = field(default_factory=dict)  # e.g. the logit lens's top-1 token
    colors: dict[NodeKey, str] = field(default_factory=dict)  # node fill, any QColor name '#rrggbb'
    tooltips: dict[NodeKey, str] = field(default_factory=dict)  # or a callable giving it, called on hover
    edges: list[tuple[NodeKey, NodeKey, float]] = field(default_factory=list)  # weight in [0, 1]
    dim: set[NodeKey] = field(default_factory=set)  # nodes drawn faded (e.g. off the route)


def _diagram_key(key, dst=None) -> NodeKey:
    """The flow graph names the residual between blocks x{L}.post; feeding block L+1 we draw x{L+1}.pre."""
    short, pos = key[0], int(key[1])
    return (name_as_read_by(short, dst[0]) if dst is not None else short), pos
