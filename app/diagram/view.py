"""The model diagram: the forward pass of the current query as layers x tokens, one node per site.

Clicking a node chooses the site and position to invert; clicking a token label chooses the
position. Sites the decoder was not trained on are drawn dashed but stay clickable. Ctrl+wheel
zooms, dragging pans, double-click fits; double-clicking a layer's attention node shows or hides
its heads (models with many heads open with them collapsed). Typing changes only the columns
that changed, so a GPT-2-sized diagram is not rebuilt on every keystroke. A DiagramOverlay
(layout.py) adds per-node readouts and weighted edges on top, for the flow-graph feature.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.diagram.colors import DiagramColors, legend_html
from app.diagram.fit import FIT_ALL_SMALLEST, fit_all_scale, gutter_width, view_rect
from app.diagram.focus_frame import FocusFrame
from app.diagram.items import CircleNode, FlowWire, RectNode, TokenLabel, add_curve, wires
from app.diagram.layout import (
    LEFT_MARGIN,
    ROW_HEIGHT,
    DiagramLayout,
    DiagramOverlay,
    column_edges,
    default_collapsed,
    fixed_height,
    layout_for,
)
from app.retire import Retirer
from app.turns import TurnBudget
from engine.probed.sites import parse_short

WIRE_WIDTH, RESID_WIDTH = 1.2, 2.2
DIM_OPACITY = 0.3  # nodes off the route, in route-only mode
MIN_LEGIBLE_SCALE = 0.65  # below this the row names and token labels are too small to read
MAX_AUTO_SCALE = 0.9
OVERLAY_SLICE = 400  # at most this many node readouts or edges per turn of the event loop, and at most SLICE_MS
TYPED_COLUMNS = 2  # columns a keystroke may add (a token split in two); more is a paste, built in steps
COLUMN_NODES = 600  # at most this many nodes built per turn when many columns are built, and at most SLICE_MS
NODE_STEP = 100  # nodes added between two looks at the turn budget within a column (GPT-2 XL's every head: 1,440)
DENSE_EDGES = 400  # overlays with more flow edges draw them without antialiasing (items.FlowWire)
MERGE_STEP = 20  # edges merged into collapsed heads' per step of the overlay's work (a slice: 8,000, about 11 ms)
MAX_ROW_STRETCH = 2.2  # rows grow to at most this multiple of ROW_HEIGHT
ROW_SETTLE = 0.12  # rows are re-stretched (a full redraw) only when the fit moves them by more than this share
ROW_NAME_FONT = QFont("DejaVu Sans Mono", 8)


@dataclass
class _Column:
    """The items of one token's column, kept so that typing can change one column alone."""

    nodes: list = field(default_factory=list)
    wires: list = field(default_factory=list)
    label: TokenLabel | None = None

    def items(self) -> list:
        return self.nodes + self.wires + ([self.label] if self.label is not None else [])


class ModelDiagram(QGraphicsView):
    nodeClicked = Signal(str, int)  # site short name, position
    nodeSelected = Signal(str, int)  # moved to with the arrow keys (Enter then "clicks" it)
    positionClicked = Signal(int)
    headsChanged = Signal()  # a layer's heads were shown or collapsed
    overlayDrawn = Signal()  # the last overlay set is drawn whole (large ones take a few turns)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.colors = DiagramColors.of(self)
        self.setBackgroundBrush(self.colors.background)
        self.setFocusPolicy(Qt.StrongFocus)  # Tab reaches the diagram; arrows move, Enter picks
        self.focus_frame = FocusFrame(self)  # and it shows: a highlight frame while it has the focus
        self._grow_timer = QTimer(self)  # the next columns of a diagram built in steps (a child: it dies with the view)
        self._grow_timer.setSingleShot(True)
        self._grow_timer.setInterval(0)
        self._grow_timer.timeout.connect(self._grow_columns)
        self._drain_timer = QTimer(self)  # the next slice of an overlay drawn in slices
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(0)
        self._drain_timer.timeout.connect(self._drain_overlay)
        self._layout: DiagramLayout | None = None
        self._n_layers = self._n_heads = 0
        self._parallel = False  # attention and MLP both read x{L}.pre: no x{L}.mid row (GPT-NeoX, GPT-J)
        self._trained: set[str] | None = None
        self._tokens: list[str] = []
        self._labels: list[str] = []
        self._nodes: dict[tuple[str, int], CircleNode | RectNode] = {}
        self._columns: list[_Column] = []
        self._partial = None  # (the next _Column, the generator adding its items) while it is half built
        self._scrap = Retirer(self)  # old scenes, taken down a slice per turn
        self._wiring_for, self._wiring_paths = None, ()  # the layout whose column wiring is cached, and its paths
        self._collapsed: frozenset[int] = frozenset()
        self._overlay_items = []
        self._edge_layer = None  # the flow edges' parent item: removing it removes them all
        self._overlay_work = None  # the rest of the overlay to draw (a generator), or None
        self._overlay_sliced = False  # the overlay being drawn is big enough to stop at the turn budget
        self._overlay: DiagramOverlay | None = None
        self._band = None
        self._selection: tuple[str, int] | None = None
        self._auto_fit = True
        self._fit_all = False  # the fit shows every position at any zoom (Ctrl+0), not only when legible
        self._row_height = ROW_HEIGHT
        self._refit = QTimer(self)  # resizes come in bursts: fit once they settle
        self._refit.setSingleShot(True)
        self._refit.setInterval(40)
        self._refit.timeout.connect(self._fit_if_auto)

    # ---- content ------------------------------------------------------------------------
    def set_model(self, n_layers: int, n_heads: int, trained_sites: list[str] | None, parallel: bool = False) -> None:
        self._n_layers, self._n_heads, self._parallel = n_layers, n_heads, parallel
        self._trained = set(trained_sites) if trained_sites is not None else None
        self._collapsed = default_collapsed(n_layers, n_heads)
        self._layout = layout_for(n_layers, n_heads, self._row_height, self._collapsed, parallel)
        self._rebuild(in_steps=True)
        self.headsChanged.emit()

    def set_trained_sites(self, trained_sites: list[str] | None) -> None:
        """Mark the sites a decoder knows; the nodes are restyled in place (a GPT-2 XL diagram's
        rebuild took 290 ms, and this comes when every model has loaded)."""
        self._trained = set(trained_sites) if trained_sites is not None else None
        for (short, _), node in self._nodes.items():
            node.set_trained(self.is_trained(short))

    def set_tokens(self, tokens: list[str], labels: list[str]) -> None:
        if tokens == self._tokens and labels == self._labels:
            return
        self._tokens, self._labels = list(tokens), list(labels)
        if self._layout is None or not self._columns:
            self._rebuild(in_steps=True)
            return
        # a GPT-2-sized column is 60-200 nodes (3-8 ms): a keystroke's column or two is built at
        # once; a pasted input's columns come over the next turns of the event loop, a few each,
        # and the overlay and selection are put back once the last is in
        typed = len(self._tokens) - len(self._columns) <= TYPED_COLUMNS
        self._sync_columns(limit=None if typed else 0)
        if self.columns_pending():
            self._grow_timer.start()
        else:
            self._after_change()

    def columns_per_turn(self) -> int:
        """Columns built per turn of the event loop when they are built in steps (COLUMN_NODES)."""
        return max(1, COLUMN_NODES // max(1, len(self._layout.nodes))) if self._layout is not None else 1

    def columns_pending(self) -> bool:
        """Whether some of the tokens' columns are still to be built (see set_tokens)."""
        return self._layout is not None and len(self._columns) < len(self._tokens)

    def finish_columns(self) -> None:
        """Build the columns still to come now (export and tests want the diagram whole)."""
        if self.columns_pending():
            self._sync_columns()
            self._grown()

    def _grow_columns(self) -> None:
        if not self.columns_pending():
            return  # a rebuild or another change finished them meanwhile
        self._add_columns(self.columns_per_turn(), TurnBudget())
        if self.columns_pending():
            self._grow_timer.start()
        else:
            self._grown()

    def _grown(self) -> None:
        self._grow_timer.stop()
        self._after_change()

    def set_selection(self, short: str | None, position: int | None, reveal: bool = True) -> None:
        """Select a site at a position; a head in a collapsed layer shows its layer's heads when
        it is newly chosen (reveal), and is marked on its attention node otherwise."""
        new = (short, position) if short is not None and position is not None else None
        drawn = self._drawn(self._selection)
        if drawn in self._nodes:
            self._nodes[drawn].set_selected(False)
        changed, self._selection = new != self._selection, new
        layer = self._head_layer(short)
        if reveal and changed and layer is not None and layer in self._collapsed:
            self.set_heads_shown(layer, True)  # rebuilds, and selects on the way
            return
        drawn = self._drawn(self._selection)
        if drawn in self._nodes:
            self._nodes[drawn].set_selected(True)
        self._place_band()

    # ---- heads: shown per layer, or collapsed into the layer's attention node ----------
    def set_heads_shown(self, layer: int | None, shown: bool) -> None:
        """Show or collapse one layer's heads (layer None: every layer's)."""
        layers = set(range(self._n_layers)) if layer is None else {layer}
        collapsed = self._collapsed - layers if shown else self._collapsed | layers
        if collapsed == self._collapsed:
            return
        self._collapsed = frozenset(collapsed)
        self._layout = layout_for(self._n_layers, self._n_heads, self._row_height, self._collapsed, self._parallel)
        self._rebuild(in_steps=True)  # every GPT-2 XL head is 1,400 nodes a column: built over several turns
        self.headsChanged.emit()

    def collapsed_layers(self) -> frozenset[int]:
        return self._collapsed

    def heads_note(self, short: str) -> str:
        """The tooltip's line on showing or hiding the heads of an attention node."""
        layer = self._attn_layer(short)
        if layer is None:
            return ""
        what = "show" if layer in self._collapsed else "hide"
        return f"\nDouble-click to {what} its {self._n_heads} heads."

    def node_double_clicked(self, short: str, position: int) -> bool:
        layer = self._attn_layer(short)
        if layer is None:
            return False
        self.set_heads_shown(layer, layer in self._collapsed)
        return True

    @property
    def n_heads(self) -> int:
        return self._n_heads

    def _attn_layer(self, short: str) -> int | None:
        """The layer of an attention node whose heads can be shown or hidden, else None."""
        parsed = parse_short(short)
        return parsed[1] if parsed and parsed[0] == "attn_out" and self._n_heads > 1 else None

    @staticmethod
    def _head_layer(short: str | None) -> int | None:
        parsed = parse_short(short) if short else None
        return parsed[1] if parsed and parsed[0] == "head" else None

    def _drawn(self, key):
        """The key of the node that draws `key` (a collapsed head is drawn by its attn node)."""
        if key is None or self._layout is None:
            return key
        return self._layout.drawn_as(key[0]), key[1]

    def is_trained(self, short: str) -> bool:
        return self._trained is None or short in self._trained

    def node(self, short: str, position: int):
        """The graphics item of one node (tests click it; the flow feature styles it)."""
        return self._nodes.get((short, position))

    def node_count(self) -> int:
        return len(self._nodes)

    # ---- overlay (flow graph) ---------------------------------------------------------
    def set_overlay(self, overlay: DiagramOverlay | None, refresh: bool = False) -> None:
        """Draw per-node readouts and weighted edges over the diagram (None clears them).

        Edge width and opacity grow with the square root of the weight, so the many weak
        attention edges stay thin and faint while the strong ones carry the eye. An overlay that
        shares its readouts (the same label, colour and tooltip dicts) with the one drawn only
        redraws edges and fading: the threshold and share sliders move over one graph. refresh:
        apply the readouts anyway (new nodes were drawn).

        A GPT-2-sized overlay is thousands of readouts and edges; they are drawn a slice per turn
        of the event loop (at most OVERLAY_SLICE steps and app.turns.SLICE_MS), so the window never
        freezes while they go on. Small overlays (the toy models') are drawn at once.
        `overlay_pending()` says whether some is still to come.
        """
        if self._edge_layer is not None:
            self.scene().removeItem(self._edge_layer)  # every edge at once: they are its children
        self._edge_layer, self._overlay_items = None, []
        old, self._overlay = self._overlay, overlay
        unfinished = self._overlay_work is not None  # the last one's readouts may be half drawn
        same = (not refresh and not unfinished and old is not None and overlay is not None
                and old.labels is overlay.labels and old.colors is overlay.colors and old.tooltips is overlay.tooltips)
        for key, node in self._nodes.items():
            dim = overlay is not None and key in overlay.dim
            if node.opacity() != (DIM_OPACITY if dim else 1.0):
                node.setOpacity(DIM_OPACITY if dim else 1.0)
        self._overlay_work = self._overlay_steps(overlay, same)
        # at most one step per node and per edge (and a merge step per MERGE_STEP edges): the toy
        # models' overlays fit in one slice and are drawn at once, whatever the clock says
        n_edges = len(overlay.edges) if overlay is not None else 0
        self._overlay_sliced = len(self._nodes) + n_edges + n_edges // MERGE_STEP + 1 > OVERLAY_SLICE
        self._drain_overlay()

    def overlay_pending(self) -> bool:
        return self._overlay_work is not None

    def overlay(self) -> DiagramOverlay | None:
        """What set_overlay drew last (None: nothing over the diagram)."""
        return self._overlay

    def finish_overlay(self) -> None:
        """Draw what is left of the overlay now (export and tests want it whole)."""
        self.finish_columns()
        while self._overlay_work is not None:
            self._drain_overlay(again=False)

    def _drain_overlay(self, again: bool = True) -> None:
        work = self._overlay_work
        if work is None:
            return
        budget = TurnBudget()
        for _ in range(OVERLAY_SLICE):
            if next(work, None) is None:
                self._overlay_work = None
                self.overlayDrawn.emit()
                return
            if self._overlay_sliced and again and budget.spent():
                break
        if again:
            self._drain_timer.start()  # the view's own timer: a newer overlay's work simply goes on from it

    def _overlay_steps(self, overlay: DiagramOverlay | None, same: bool):
        """The overlay's work, one node readout or one edge per step (yields True per step).
        It walks a snapshot of the nodes: typing may add or drop columns between two steps."""
        nodes = list(self._nodes.items())
        if not same:
            for key, node in nodes:
                if node.has_readout and (overlay is None or key not in overlay.labels and key not in overlay.colors
                                         and key not in overlay.tooltips):
                    node.set_readout(None, None)
                    yield True
        if overlay is None:
            return
        if not same:
            for key, node in nodes:
                if key in overlay.labels or key in overlay.colors or key in overlay.tooltips:
                    color = overlay.colors.get(key)
                    node.set_readout(overlay.labels.get(key), QColor(color) if color else None,
                                     overlay.tooltips.get(key))
                    yield True
        layer = QGraphicsRectItem()
        layer.setPen(QPen(Qt.NoPen))
        layer.setFlag(QGraphicsItem.ItemHasNoContents)
        layer.setZValue(1)  # above the wiring, under the nodes
        self.scene().addItem(layer)
        self._edge_layer = layer
        edges = overlay.edges
        if self._collapsed:  # merged in steps too: a GPT-2-sized graph's merge took 33 ms in one piece
            merged: dict = {}
            for start in range(0, len(edges), MERGE_STEP):
                self._merge_edges(edges[start:start + MERGE_STEP], merged)
                yield True
            edges = [(a, b, w) for (a, b), w in merged.items()]
        dense = len(edges) > DENSE_EDGES
        for src, dst, weight in edges:
            a, b = self._nodes.get(src), self._nodes.get(dst)
            if a is None or b is None or weight <= 0:
                continue
            strength = min(weight, 1.0) ** 0.5
            color = QColor(self.colors.flow_edge)
            color.setAlphaF(0.12 + 0.83 * strength)
            pen = QPen(color, 0.4 + 3.6 * strength)
            pen.setCapStyle(Qt.RoundCap)
            item = FlowWire(a.sceneBoundingRect().center(), b.sceneBoundingRect().center(), pen, strength, dense)
            item.setToolTip(f"{src[0]} @ {src[1]} → {dst[0]} @ {dst[1]}: contribution {weight:.3f}")
            item.flow_edge = (src, dst, weight)
            item.setParentItem(layer)
            self._overlay_items.append(item)
            yield True

    def _merge_edges(self, edges, merged: dict) -> None:
        """Add edges to merged {(drawn src, drawn dst): weight}: with a layer's heads collapsed,
        their edges join their attention node's (weights added, at most 1), and a head's edge into
        its own attention node goes."""
        for src, dst, weight in edges:
            a, b = self._drawn(src), self._drawn(dst)
            if a != b:
                merged[a, b] = min(1.0, merged.get((a, b), 0.0) + weight)

    def edge_items(self) -> list:
        """The flow edges drawn now (each item's .flow_edge is (src key, dst key, weight))."""
        return list(self._overlay_items)

    # ---- drawing ------------------------------------------------------------------------
    def _rebuild(self, in_steps: bool = False) -> None:
        """Draw everything again: on a new model, on showing or hiding heads, on new row heights.
        in_steps: a diagram bigger than one turn's worth (COLUMN_NODES) is built over the next
        turns of the event loop, a few columns each (see set_tokens)."""
        self._retire_scene()
        self._nodes, self._columns, self._overlay_items, self._band = {}, [], [], None
        self._partial = None
        self._edge_layer, self._overlay_work = None, None
        if self._layout is None or not self._tokens:
            return
        self._settle_rows()
        limit = None
        if in_steps and len(self._tokens) > self.columns_per_turn():
            limit = 0  # all in the next turns: this call often comes inside other work (a model being chosen)
        self._sync_columns(limit=limit)
        if self.columns_pending():
            self._grow_timer.start()
        else:
            self._after_change()

    def _retire_scene(self) -> None:
        """Show a fresh, empty scene and take the old one down over the next turns (app/retire.py):
        clearing GPT-2 XL's scene with every head shown took 110-230 ms in one piece."""
        old = self.scene()
        items = [item for column in self._columns for item in column.items()]
        if self._partial is not None:
            column, steps = self._partial
            steps.close()
            items += column.items()
        if self._band is not None:
            items.append(self._band)
        if self._edge_layer is not None:
            items += [self._edge_layer, *self._edge_layer.childItems()]  # popped from the end: children first
        scene = QGraphicsScene(self)
        scene.setSceneRect(old.sceneRect())  # the view keeps its place until the new columns come
        self.setScene(scene)
        self._scrap.retire_scene(old, items)

    def _sync_columns(self, limit: int | None = None) -> None:
        """Make the columns match the tokens: new ones at the end (at most `limit` of them),
        extra ones gone, the rest relabelled in place (their nodes do not depend on the token)."""
        n = len(self._tokens)
        if len(self._columns) >= n:
            self._drop_partial()  # it was for a token that has gone
        while len(self._columns) > n:
            self._remove_column(self._columns.pop())
        for pos, column in enumerate(self._columns):
            column.label.set_text(self._tokens[pos], self._label(pos))
        self._add_columns(limit)

    def _remove_column(self, column: _Column) -> None:
        scene = self.scene()
        for item in column.items():
            scene.removeItem(item)
        for item in column.nodes:
            del self._nodes[item.key]

    def _drop_partial(self) -> None:
        if self._partial is not None:
            column, steps = self._partial
            self._partial = None
            steps.close()
            self._remove_column(column)

    def _add_columns(self, limit: int | None = None, budget: TurnBudget | None = None) -> None:
        """Build the next columns: all that are missing, or at most `limit`. With a budget, stop
        once the turn's budget is spent, after NODE_STEP nodes at least: a column may be left
        half built (self._partial) and goes on from there on the next turn."""
        n = len(self._tokens)
        end = n if limit is None else min(n, len(self._columns) + limit)
        while len(self._columns) < end:
            if self._partial is None:
                column = _Column()
                self._partial = column, self._column_steps(column, len(self._columns))
            column, steps = self._partial
            out_of_time = False
            for _ in steps:
                if budget is not None and budget.spent():
                    out_of_time = True
                    break
            else:
                self._columns.append(column)
                self._partial = None
                out_of_time = budget is not None and budget.spent()
            if out_of_time:
                break
        self.scene().setSceneRect(QRectF(0, 0, self._layout.width(n), self._layout.height()))

    def _label(self, pos: int) -> str:
        return self._labels[pos] if pos < len(self._labels) else ""

    def _column_steps(self, column: _Column, pos: int):
        """Add the items of token `pos`'s column to `column` and the scene, yielding after every
        NODE_STEP nodes; the wiring and the token's label come last, in one step."""
        lay, scene = self._layout, self.scene()
        for start in range(0, len(lay.nodes), NODE_STEP):
            for spec in lay.nodes[start:start + NODE_STEP]:
                x, y = lay.center(spec, pos)
                rect = QRectF(x - spec.width / 2, y - spec.height / 2, spec.width, spec.height)
                cls = CircleNode if spec.shape == "circle" else RectNode
                item = cls(self, spec.short, pos, self.is_trained(spec.short), rect)
                scene.addItem(item)
                self._nodes[(spec.short, pos)] = item
                column.nodes.append(item)
            yield
        yield from self._wiring_steps()
        resid, other = self._wiring_paths
        dx = lay.column_left(pos) - lay.column_left(0)
        column.wires = [wires(resid, QPen(self.colors.resid_wire, RESID_WIDTH), z=-1, dx=dx),
                        wires(other, QPen(self.colors.wire, WIRE_WIDTH), z=-1, dx=dx)]
        for item in column.wires:
            scene.addItem(item)
        left = lay.column_left(pos)
        column.label = TokenLabel(self, pos, QRectF(left + 2, lay.grid_bottom() + 4, lay.column_width - 4, 38),
                                  self._tokens[pos], self._label(pos))
        scene.addItem(column.label)

    def _wiring_steps(self):
        """Make the first column's wiring as two paths (residual stream, the rest) unless the
        layout's are made already, yielding every NODE_STEP curves: for GPT-2 XL with every head
        shown it is 2,700 curves, 60 ms. Every column draws these paths, moved (items.wires)."""
        lay = self._layout
        if self._wiring_for is lay:
            return
        specs = {s.short: s for s in lay.nodes}
        resid, other = QPainterPath(), QPainterPath()
        for i, (a, b) in enumerate(column_edges(self._n_layers, self._n_heads, self._collapsed, self._parallel)):
            path = resid if specs[a].shape == "circle" and specs[b].shape == "circle" else other
            add_curve(path, QPointF(*lay.center(specs[a], 0)), QPointF(*lay.center(specs[b], 0)))
            if i % NODE_STEP == NODE_STEP - 1:
                yield
        self._wiring_for, self._wiring_paths = lay, (resid, other)

    def _after_change(self) -> None:
        if self._overlay is not None:
            self.set_overlay(self._overlay, refresh=True)
        self.set_selection(*(self._selection or (None, None)), reveal=False)
        self._fit_if_auto()

    def _place_band(self) -> None:
        if self._band is not None:
            self.scene().removeItem(self._band)
            self._band = None
        lay = self._layout
        if lay is None or self._selection is None or not self._tokens:
            return
        pos = self._selection[1]
        if not 0 <= pos < len(self._tokens):
            return
        top = lay.row_y(lay.n_rows - 1) - lay.row_height / 2
        rect = QRectF(lay.column_left(pos), top, lay.column_width, lay.grid_bottom() - top + 44)
        self._band = self.scene().addRect(rect, QPen(Qt.NoPen), self.colors.band)
        self._band.setZValue(-2)
        node = self._nodes.get(self._drawn(self._selection))  # chosen elsewhere (token strip, site list): bring it in
        if node is not None:
            self.ensureVisible(node, 40, 40)
        else:
            self.ensureVisible(self._band, 20, 0)

    def drawForeground(self, painter, rect) -> None:
        """Row names pinned to the view's left edge, so they stay visible while panning."""
        lay = self._layout
        if lay is None or not self._tokens:
            return
        painter.save()
        painter.resetTransform()  # paint in viewport pixels
        painter.setFont(ROW_NAME_FONT)
        fm = painter.fontMetrics()
        width = max(fm.horizontalAdvance(name) for _, name in lay.row_names) + 10
        last = None  # zoomed far out (a fit of every position), names that would overlap are left out
        for row, name in lay.row_names:
            y = self.mapFromScene(QPointF(0, lay.row_y(row))).y()
            if last is not None and abs(y - last) < fm.height():
                continue
            last = y
            painter.fillRect(0, y - fm.height() // 2, width, fm.height(), self.colors.backdrop)
            painter.setPen(self.colors.muted)
            painter.drawText(4, y + fm.ascent() // 2 - 1, name)
        painter.restore()

    def render_image(self, scale: float = 2.0):
        """The whole diagram (not just the visible part) as a QImage, for export."""
        from PySide6.QtGui import QImage

        self.finish_overlay()
        rect = self.scene().sceneRect()
        image = QImage(int(rect.width() * scale), int(rect.height() * scale), QImage.Format_ARGB32)
        image.fill(self.colors.background)  # the items are coloured for it
        painter = QPainter(image)
        painter.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.scene().render(painter)
        painter.scale(scale, scale)
        painter.setFont(ROW_NAME_FONT)
        painter.setPen(self.colors.muted)
        for row, name in (self._layout.row_names if self._layout else ()):
            painter.drawText(QPointF(4, self._layout.row_y(row) + 4), name)
        painter.end()
        return image

    # ---- clicks from items -----------------------------------------------------------
    def node_clicked(self, short: str, position: int) -> None:
        self.set_selection(short, position)
        self.nodeClicked.emit(short, position)

    def position_clicked(self, position: int) -> None:
        self.positionClicked.emit(position)

    # ---- the keyboard: a site can be chosen without the mouse ------------------------
    def neighbour(self, key, direction: str):
        """The node next to `key` ("left", "right": the same site at the next position; "up",
        "down": the next node drawn above or below at the same position), or None at an edge."""
        short, pos = key
        if direction in ("left", "right"):
            step = -1 if direction == "left" else 1
            target = (short, pos + step)
            return target if target in self._nodes else None
        column = sorted((k for k in self._nodes if k[1] == pos),
                        key=lambda k: (-self._nodes[k].sceneBoundingRect().center().y(),
                                       self._nodes[k].sceneBoundingRect().center().x()))  # bottom (x0.pre) first
        i = column.index(key) + (1 if direction == "up" else -1)
        return column[i] if 0 <= i < len(column) else None

    def keyPressEvent(self, event) -> None:
        moves = {Qt.Key_Left: "left", Qt.Key_Right: "right", Qt.Key_Up: "up", Qt.Key_Down: "down"}
        if event.key() in moves and self._nodes:
            start = self._selection if self._selection in self._nodes else min(self._nodes, key=lambda k: k[1])
            target = self.neighbour(start, moves[event.key()]) if self._selection in self._nodes else start
            if target is not None:
                self.set_selection(*target)
                self.ensureVisible(self._nodes[target], 40, 40)
                self.nodeSelected.emit(*target)
            event.accept()
        elif event.key() in (Qt.Key_Return, Qt.Key_Enter, Qt.Key_Space) and self._selection in self._nodes:
            self.node_clicked(*self._selection)
            event.accept()
        else:
            super().keyPressEvent(event)

    # ---- zoom and pan -------------------------------------------------------------------
    def _scale_for_width(self, width: float | None = None) -> float:
        """The zoom fitting the drawing's width (default: the scene's): never below legible, except in
        a fit of every position (Ctrl+0), which leaves the row names a gutter (fit.py)."""
        width, view = self.scene().sceneRect().width() if width is None else width, self.viewport().width()
        if self._fit_all:
            return max(FIT_ALL_SMALLEST, min((view - self._gutter()) / max(width - LEFT_MARGIN, 1.0), MAX_AUTO_SCALE))
        return max(MIN_LEGIBLE_SCALE, min(view / max(width, 1.0), MAX_AUTO_SCALE))

    def _gutter(self) -> int:
        return gutter_width(ROW_NAME_FONT, self._layout.row_names if self._layout else ())

    def _settle_rows(self) -> bool:
        """Stretch the rows into the view's spare height (when fitting); True if they changed."""
        lay = self._layout
        if not self._auto_fit or lay is None or not self._tokens:
            return False
        view = self.viewport().rect()
        scale = self._scale_for_width(lay.width(len(self._tokens)))
        spare = (view.height() / scale - fixed_height() - 6) / lay.n_rows
        row_height = min(max(spare, ROW_HEIGHT), ROW_HEIGHT * MAX_ROW_STRETCH)
        if abs(row_height - self._row_height) <= ROW_SETTLE * self._row_height:
            return False  # typing a token moves the fit a little: not worth redrawing every row
        self._row_height = row_height
        self._layout = layout_for(self._n_layers, self._n_heads, row_height, self._collapsed, self._parallel)
        return True

    def _fit_if_auto(self) -> None:
        """Fit the width when legible (else scroll to the selection); stretch rows into spare height."""
        rect = self.scene().sceneRect()
        if not self._auto_fit or rect.isEmpty() or self._layout is None:
            return
        if self._settle_rows():
            self._rebuild()  # calls back here once, with the row height settled
            return
        view = self.viewport().rect()
        if self._fit_all:  # every position and layer, the row names in a gutter of their own (fit.py)
            scale = fit_all_scale(rect, view.width(), view.height(), self._gutter(), MAX_AUTO_SCALE)
            self.setSceneRect(view_rect(rect, scale, self._gutter()))
        else:  # fit the height too, but never below legible: a 12-layer model scrolls up and down instead
            self.setSceneRect(QRectF())  # the scene's own rect
            scale = min(self._scale_for_width(), max(view.height() / rect.height(), MIN_LEGIBLE_SCALE))
        self.resetTransform()
        self.scale(scale, scale)
        node = self._nodes.get(self._drawn(self._selection)) if self._selection is not None else None
        if self._fit_all:
            self.centerOn(self.sceneRect().center())
        elif node is not None:  # a 12-layer model scrolls: the selected node's layer is the one to show
            self.centerOn(node.sceneBoundingRect().center())
        else:
            self.centerOn(self._band.rect().center() if self._band is not None else rect.center())

    def fit(self, *, all_positions: bool = True) -> None:
        """Ctrl+0, a double-click: every position in view; all_positions False: the automatic fit."""
        self._auto_fit, self._fit_all = True, all_positions
        self._fit_if_auto()

    def fits_all(self) -> bool:
        return self._auto_fit and self._fit_all

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._auto_fit:
            self._refit.start()

    def changeEvent(self, event) -> None:
        """A new palette (the system switched to dark, say): recolour by drawing again."""
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            colors = DiagramColors.of(self)
            if colors != self.colors:
                self.colors = colors
                self.setBackgroundBrush(colors.background)
                self._rebuild()

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.ControlModifier:
            self._auto_fit = False
            factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
            self.scale(factor, factor)
        else:
            super().wheelEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        if self.itemAt(event.position().toPoint()) is None:
            self.fit()
        else:
            super().mouseDoubleClickEvent(event)


class DiagramPanel(QWidget):
    """The diagram with the flow graph's controls above it and the legends underneath."""

    def __init__(self, parent=None):
        super().__init__(parent)
        from app.explain.map_view import MapBar
        from app.flow.controls import FlowControls, TargetLegend

        self.flow_controls = FlowControls()
        self.map_bar = MapBar()
        self.view = ModelDiagram()
        self.legend = QLabel(legend_html(self))
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("font-size: 8pt;")
        self.flow_legend = TargetLegend()
        self.heads_button = QPushButton()
        self.heads_button.setFlat(True)
        self.heads_button.setToolTip("Show every layer's heads, or collapse them into the attention nodes "
                                     "(double-click one attention node for its layer alone)")
        self.heads_button.clicked.connect(self._toggle_heads)
        self.view.headsChanged.connect(self._update_heads_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.flow_controls)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.map_bar)
        keys = QHBoxLayout()  # the legend's text has a row of its own: beside these it wrapped into a tall column
        keys.addWidget(self.heads_button)
        keys.addStretch(1)
        keys.addWidget(self.flow_legend)
        lay.addLayout(keys)
        lay.addWidget(self.legend)
        self._update_heads_button()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.PaletteChange:
            self.legend.setText(legend_html(self))

    def _toggle_heads(self) -> None:
        self.view.set_heads_shown(None, bool(self.view.collapsed_layers()))

    def _update_heads_button(self) -> None:
        v = self.view
        self.heads_button.setVisible(v.n_heads > 1)
        self.heads_button.setText("Show all heads" if v.collapsed_layers() else "Collapse heads")
