"""The model diagram: one node per site and token, clicks choose site and position, overlays."""
from types import SimpleNamespace

from PySide6.QtCore import Qt

from app.diagram.layout import column_edges, layout_for
from app.diagram.view import ModelDiagram
from app.flow.overlay import flow_overlay
from engine.flow.graph import FlowNode, flow_edge
from engine.probed.model import PAPER_CONFIGS
from engine.probed.sites import all_sites, paper_sites
from engine.tasks import get_task


def diagram(qtbot, task="counting"):
    cfg = PAPER_CONFIGS[task]
    t = get_task(task)
    ids = t.parse_query(t.examples()[0])
    d = ModelDiagram()
    qtbot.addWidget(d)
    d.resize(900, 500)
    d.set_model(cfg.n_layers, cfg.n_heads, [s.short for s in paper_sites(cfg)])
    d.set_tokens([t.vocab.chars[i] for i in ids], t.position_labels(ids))
    d.show()
    return d, cfg, ids


def test_one_node_per_site_and_token(qtbot):
    d, cfg, ids = diagram(qtbot, "addition")
    assert d.node_count() == len(all_sites(cfg)) * len(ids)
    assert {s.short for s in all_sites(cfg)} == {n.short for n in layout_for(2, 4).nodes}
    assert all(a in {n.short for n in layout_for(2, 4).nodes} for a, _ in column_edges(2, 4))


def test_untrained_sites_are_marked_but_clickable(qtbot):
    d, _, _ = diagram(qtbot)
    trained, untrained = d.node("x1.post", 3), d.node("attn0", 3)
    assert trained.trained and not untrained.trained
    assert untrained.pen().style() == Qt.DashLine and trained.pen().style() == Qt.SolidLine
    assert "not trained" in untrained.toolTip()
    with qtbot.waitSignal(d.nodeClicked) as blocker:
        qtbot.mouseClick(d.viewport(), Qt.LeftButton, pos=d.mapFromScene(untrained.sceneBoundingRect().center()))
    assert blocker.args == ["attn0", 3]


def test_a_loaded_decoders_sites_are_marked_in_place(qtbot):
    from app.diagram.layout import DiagramOverlay

    d, _, _ = diagram(qtbot)
    d.set_overlay(DiagramOverlay(labels={("attn0", 3): "a"}, tooltips={("attn0", 3): "lens: a"}))
    d.finish_overlay()
    node = d.node("attn0", 3)
    d.set_trained_sites(["attn0", "x1.post"])  # another decoder: attn0 now, x0.post no more
    assert d.node("attn0", 3) is node  # restyled, not rebuilt
    assert node.trained and node.pen().style() == Qt.SolidLine and "not trained" not in node.toolTip()
    assert "lens: a" in node.toolTip() and node.label_item.text() == "a"  # the readout stays
    other = d.node("x0.post", 3)
    assert not other.trained and other.pen().style() == Qt.DashLine and "not trained" in other.toolTip()


def test_clicking_a_node_selects_it(qtbot):
    d, _, _ = diagram(qtbot)
    node = d.node("a1.0", 7)
    d.centerOn(node)
    with qtbot.waitSignal(d.nodeClicked) as blocker:
        qtbot.mouseClick(d.viewport(), Qt.LeftButton, pos=d.mapFromScene(node.sceneBoundingRect().center()))
    assert blocker.args == ["a1.0", 7]
    assert node.selected and not d.node("a1.0", 6).selected


def test_an_overlay_from_a_flow_graph_adds_labels_and_edges(qtbot):
    d, cfg, ids = diagram(qtbot)
    site = {s.short: s for s in all_sites(cfg)}

    def node(short, pos, top):
        return FlowNode(site=site[short], position=pos, norm=1.0, top=[(top, 0.9), (1, 0.05)], target=top,
                        target_prob=0.9, target_rank=1, promoted=[], suppressed=[])

    vocab = get_task("counting").vocab.chars
    graph = SimpleNamespace(
        nodes=[node("x0.post", 14, 28), node("a1.0", 14, 28), node("x1.post", 14, 28)],
        edges=[flow_edge(("x0.post", 3), ("a1.0", 14), 0.5), flow_edge(("a1.0", 14), ("x1.mid", 14), 0.25),
               flow_edge(("x0.pre", 1), ("a0.0", 2), 0.01)],
        threshold=0.04, label=lambda i: vocab[i], n_layers=2)
    overlay = flow_overlay(graph, [e for e in graph.edges if e[2] >= graph.threshold])  # as the flow view shows it
    assert overlay.labels[("x1.post", 14)] == "3"
    assert overlay.labels[("x1.pre", 14)] == "3"  # the same vector, drawn twice
    assert (("x1.pre", 3), ("a1.0", 14), 0.5) in overlay.edges  # fed into layer 1 from x1.pre
    assert len(overlay.edges) == 2  # the weak edge is under the threshold
    d.set_overlay(overlay)
    assert d.node("x1.post", 14).label_item.isVisible()
    assert d.node("x1.post", 14).label_item.text() == "3"
    assert len(d._overlay_items) == 2
    d.set_overlay(None)
    assert not d.node("x1.post", 14).label_item.isVisible() and not d._overlay_items


def test_the_whole_diagram_renders_to_an_image(qtbot):
    d, _, _ = diagram(qtbot, "addition")
    image = d.render_image(scale=1.0)
    assert image.width() > 1000 and image.height() > 300



def test_ctrl_wheel_zooms_and_double_click_fits_again(qtbot):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    d, _, _ = diagram(qtbot)
    qtbot.waitUntil(lambda: not d._refit.isActive())
    before = d.transform().m11()
    pos = QPointF(d.viewport().rect().center())
    wheel = QWheelEvent(pos, d.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120), Qt.NoButton,
                        Qt.ControlModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(d.viewport(), wheel)
    assert d.transform().m11() > before * 1.1
    empty = d.mapFromScene(QPointF(2, 2))  # the top-left corner holds no item
    qtbot.mouseDClick(d.viewport(), Qt.LeftButton, pos=empty)
    assert abs(d.transform().m11() - before) < 1e-6


def gpt2_diagram(qtbot, n_tokens=8):
    """A GPT-2-small-shaped diagram (12 layers x 12 heads) with text tokens."""
    from app.diagram.view import DiagramPanel

    panel = DiagramPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    d = panel.view
    d.set_model(12, 12, None)
    d.set_tokens([f"␣w{i}" for i in range(n_tokens)], [f"␣w{i}" for i in range(n_tokens)])
    d.finish_columns()  # a long input's columns come over a few turns of the event loop
    panel.show()
    return panel, d


def test_many_heads_open_collapsed_and_a_double_click_shows_one_layers(qtbot):
    panel, d = gpt2_diagram(qtbot)
    assert d.node_count() == 12 * 5 * 8  # x.pre, attn, x.mid, m, x.post per layer: no heads yet
    assert d.node("a3.4", 0) is None and d.node("attn3", 0) is not None
    attn = d.node("attn3", 2)
    assert "Double-click to show its 12 heads" in attn.toolTip()
    assert not panel.heads_button.isHidden() and panel.heads_button.text() == "Show all heads"
    d.centerOn(attn)
    qtbot.mouseDClick(d.viewport(), Qt.LeftButton, pos=d.mapFromScene(attn.sceneBoundingRect().center()))
    assert d.collapsed_layers() == frozenset(range(12)) - {3}
    assert d.node_count() == (12 * 5 + 12) * 8
    assert d.node("a3.11", 7) is not None and d.node("a4.0", 7) is None
    # the heads' row sits between x3.pre and attn3, as in a fully drawn layer
    y = {k: d.node(k, 0).sceneBoundingRect().center().y() for k in ("x3.pre", "a3.0", "attn3")}
    assert y["x3.pre"] > y["a3.0"] > y["attn3"]
    assert "Double-click to hide" in d.node("attn3", 0).toolTip()
    panel.heads_button.click()
    # 204 nodes a column, more than one turn's worth: built over the next turns of the event loop
    assert d.collapsed_layers() == frozenset() and d.columns_pending() and d.node_count() < 204 * 8
    qtbot.waitUntil(lambda: not d.columns_pending(), timeout=10_000)
    assert d.node_count() == (12 * 5 + 144) * 8 and d.node("a11.11", 7) is not None
    assert panel.heads_button.text() == "Collapse heads"
    panel.heads_button.click()
    assert d.collapsed_layers() == frozenset(range(12))


def test_choosing_a_collapsed_head_shows_its_layer_and_collapsing_marks_attn(qtbot):
    _, d = gpt2_diagram(qtbot)
    d.set_selection("a7.5", 3)  # e.g. chosen from the site list
    assert 7 not in d.collapsed_layers() and d.node("a7.5", 3).selected
    d.set_heads_shown(7, False)
    assert d.node("a7.5", 3) is None
    assert d.node("attn7", 3).selected  # the selection stays visible, on the node that holds the head
    d.set_tokens([f"␣w{i}" for i in range(9)], [f"␣w{i}" for i in range(9)])
    assert 7 in d.collapsed_layers()  # typing does not undo what the user collapsed


def test_typing_changes_only_the_columns_that_changed(qtbot):
    _, d = gpt2_diagram(qtbot, n_tokens=5)
    kept = d.node("m5", 2)
    d.set_tokens(["a", "b", "c", "d", "e", "f"], ["a", "b", "c", "d", "e", "f"])
    assert d.node("m5", 2) is kept  # the same item: the column was not rebuilt
    assert d.node("m5", 5) is not None and d.node_count() == 12 * 5 * 6
    label = [i for i in d.scene().items() if getattr(i, "position", None) == 1 and hasattr(i, "set_text")][0]
    assert label.text == ("b", "b") and "'b'" in label.toolTip()
    d.set_tokens(["a", "b"], ["a", "b"])
    assert d.node("m5", 2) is None and d.node_count() == 12 * 5 * 2
    assert d.scene().sceneRect().width() == d._layout.width(2)
    assert not [i for i in d.scene().items() if getattr(i, "position", None) == 3]


def test_a_pasted_long_input_is_built_over_a_few_turns_and_ends_whole(qtbot):
    from app.diagram.layout import DiagramOverlay

    _, d = gpt2_diagram(qtbot, n_tokens=5)
    d.set_selection("m5", 2)
    labels = {(f"m{L}", p): "tok" for L in range(12) for p in range(30)}
    d.set_overlay(DiagramOverlay(labels=labels))
    d.finish_overlay()
    d.set_tokens([f"t{i}" for i in range(30)], [str(i) for i in range(30)])  # 25 columns more at once
    assert d.columns_pending() and d.node_count() == 12 * 5 * 5  # none yet: they come in the next turns
    assert d.node("m5", 29) is None
    qtbot.waitUntil(lambda: not d.columns_pending() and not d.overlay_pending(), timeout=10_000)
    assert d.node_count() == 12 * 5 * 30
    assert d.node("m5", 29).label_item.text() == "tok"  # the overlay reaches the new columns
    assert d.node("m5", 2).selected  # and the selection stays
    d.set_tokens([f"t{i}" for i in range(40)], [str(i) for i in range(40)])
    d.finish_overlay()  # an export wants it whole at once
    assert not d.columns_pending() and d.node("m5", 39) is not None and not d.node("m5", 39).has_readout


def test_flow_edges_of_collapsed_heads_join_their_attention_node(qtbot):
    from app.diagram.layout import DiagramOverlay

    _, d = gpt2_diagram(qtbot)
    overlay = DiagramOverlay(edges=[(("x2.pre", 1), ("a2.0", 4), 0.25), (("x2.pre", 1), ("a2.7", 4), 0.5),
                                    (("a2.7", 4), ("attn2", 4), 0.9), (("m2", 4), ("x2.post", 4), 0.3)])
    d.set_overlay(overlay)
    drawn = sorted(i.flow_edge for i in d.edge_items())
    assert drawn == [(("m2", 4), ("x2.post", 4), 0.3), (("x2.pre", 1), ("attn2", 4), 0.75)]
    d.set_heads_shown(2, True)  # shown heads get their own edges back
    assert len(d.edge_items()) == 4


def test_a_large_overlay_is_drawn_over_several_turns_and_a_newer_one_replaces_it(qtbot):
    from app.diagram.layout import DiagramOverlay
    from app.diagram.view import OVERLAY_SLICE

    _, d = gpt2_diagram(qtbot, n_tokens=30)
    labels = {(f"x{L}.post", p): "tok" for L in range(12) for p in range(30)}
    edges = [((f"x{L}.pre", j), (f"attn{L}", i), 0.5)
             for L in range(12) for i in range(30) for j in range(i + 1)][:3000]
    big = DiagramOverlay(labels=labels, edges=edges)
    d.set_overlay(big)
    assert d.overlay_pending()  # 360 readouts and 3,000 edges: more than one slice
    assert len(d.edge_items()) < len(edges)
    assert sum(n.has_readout for n in d._nodes.values()) <= OVERLAY_SLICE
    with qtbot.waitSignal(d.overlayDrawn, timeout=10_000):
        pass
    assert not d.overlay_pending() and len(d.edge_items()) == len(edges)
    assert d.node("x5.post", 29).label_item.text() == "tok"

    d.set_overlay(big)
    small = DiagramOverlay(labels={("m0", 0): "m"}, edges=[(("m0", 0), ("x0.post", 0), 1.0)])
    d.set_overlay(small)  # before the big one is finished: nothing of it may stay
    assert not d.overlay_pending()
    assert [i.flow_edge for i in d.edge_items()] == small.edges
    assert not d.node("x5.post", 29).has_readout and d.node("m0", 0).label_item.text() == "m"
    qtbot.wait(50)  # the big one's queued slices find themselves superseded
    assert len(d.edge_items()) == 1


def test_on_a_slow_turn_a_slice_stops_at_the_time_budget_and_the_result_is_the_same(qtbot, turn_clock):
    """A slice ends after app.turns.SLICE_MS as well as after OVERLAY_SLICE steps: the same 400
    items cost 6 ms on one turn and 18 on another. Where it is cut never changes what is drawn."""
    from app.diagram.layout import DiagramOverlay
    from app.diagram.view import NODE_STEP, OVERLAY_SLICE

    _, d = gpt2_diagram(qtbot, n_tokens=30)
    labels = {(f"x{L}.post", p): "tok" for L in range(12) for p in range(30)}
    edges = [((f"x{L}.pre", j), (f"attn{L}", i), 0.5) for L in range(12) for i in range(30) for j in range(i + 1)][:900]
    turn_clock.step = 1.0  # every look at the clock: a second later
    d.set_overlay(DiagramOverlay(labels=labels, edges=edges))
    readouts = sum(n.has_readout for n in d._nodes.values())
    assert readouts == 1  # one step, then the budget was spent (a frozen clock: OVERLAY_SLICE)
    d._drain_overlay()
    assert sum(n.has_readout for n in d._nodes.values()) == 2
    with qtbot.waitSignal(d.overlayDrawn, timeout=30_000):
        pass
    assert len(d.edge_items()) == len(edges) and sum(n.has_readout for n in d._nodes.values()) == len(labels)
    assert len(labels) < OVERLAY_SLICE  # so the frozen clock would have drawn every readout in the first slice

    turn_clock.step = 0.0
    d.set_tokens([f"t{i}" for i in range(60)], [str(i) for i in range(60)])  # a paste: built in steps
    per_turn = d.columns_per_turn()
    d._grow_columns()
    assert len(d._columns) == 30 + per_turn  # the count bounds a turn while the clock stands still
    turn_clock.step = 1.0
    before = d.node_count()
    d._grow_columns()
    assert 0 < d.node_count() - before <= NODE_STEP  # a slow turn: one step of a column, then the budget was spent
    assert d._partial is not None and len(d._columns) == 30 + per_turn  # the column goes on from there
    qtbot.waitUntil(lambda: not d.columns_pending() and not d.overlay_pending(), timeout=30_000)
    assert d.node_count() == 12 * 5 * 60 and d.node("x5.post", 29).label_item.text() == "tok"


def test_a_rebuild_shows_a_fresh_scene_and_takes_the_old_one_down_over_a_few_turns(qtbot, turn_clock):
    """Clearing GPT-2 XL's scene took 110-230 ms in one piece: a rebuild puts a new scene in
    and the old one's items go a slice per turn, edges before their layer, then the scene."""
    from app.diagram.layout import DiagramOverlay
    from app.retire import STRIDE

    _, d = gpt2_diagram(qtbot, n_tokens=10)
    edges = [((f"x{L}.pre", 0), (f"attn{L}", p), 0.5) for L in range(12) for p in range(10)]
    d.set_overlay(DiagramOverlay(labels={("x0.post", 0): "a"}, edges=edges))
    d.finish_overlay()
    old = d.scene()
    before = len(old.items())
    gone = []
    old.destroyed.connect(lambda: gone.append(True))
    d.set_heads_shown(None, True)
    assert d.scene() is not old and len(old.items()) == before  # nothing taken down inside the call
    turn_clock.step = 1.0  # a slow turn: one stride, then the budget is spent
    d._scrap._step()
    assert before - STRIDE >= len(old.items()) > 0
    qtbot.waitUntil(lambda: bool(gone), timeout=10_000)
    d.finish_overlay()
    assert d.node_count() == 12 * (5 + 12) * 10 and len(d.edge_items()) == len(edges)  # heads shown: one edge each
    assert all(item.scene() is d.scene() for item in d.edge_items())


def test_typing_while_a_large_overlay_is_drawn_keeps_drawing_it(qtbot):
    from app.diagram.layout import DiagramOverlay

    _, d = gpt2_diagram(qtbot, n_tokens=30)
    labels = {(short, p): "tok" for L in range(12) for short in (f"x{L}.post", f"m{L}") for p in range(30)}
    d.set_overlay(DiagramOverlay(labels=labels))
    assert d.overlay_pending()
    d.set_tokens([f"t{i}" for i in range(31)], [str(i) for i in range(31)])  # a column more, mid-way
    d.set_tokens([f"t{i}" for i in range(20)], [str(i) for i in range(20)])  # ten fewer
    with qtbot.waitSignal(d.overlayDrawn, timeout=10_000):
        pass
    assert d.node("m11", 19).label_item.text() == "tok" and d.node("m11", 25) is None
    d.set_overlay(None)  # a new query clears the readouts, a slice at a time ...
    assert d.overlay_pending()
    d.set_tokens([f"t{i}" for i in range(25)], [str(i) for i in range(25)])  # ... while the tokens change
    with qtbot.waitSignal(d.overlayDrawn, timeout=10_000):
        pass
    assert not any(n.has_readout for n in d._nodes.values())


def test_a_parallel_attention_model_draws_no_mid_row_and_its_mlp_reads_x_pre(qtbot):
    """GPT-NeoX / GPT-J: attention and MLP both read x{L}.pre; x{L}.post is x{L}.pre + attn + m."""
    from engine.probed.config import ProbedConfig

    cfg = ProbedConfig("text", n_layers=2, n_heads=4, d_model=64, d_mlp=256, n_ctx=32, d_vocab=300,
                       act_fn="gelu", parallel_attn_mlp=True)
    d = ModelDiagram()
    qtbot.addWidget(d)
    d.resize(900, 500)
    d.set_model(cfg.n_layers, cfg.n_heads, [], parallel=True)
    d.set_tokens(["<bos>", "␣Mary", "␣went"], ["0", "1", "2"])
    d.show()
    shorts = {n.short for n in layout_for(2, 4, parallel=True).nodes}
    assert shorts == {s.short for s in all_sites(cfg)} and not any(s.endswith(".mid") for s in shorts)
    assert d.node_count() == len(all_sites(cfg)) * 3 and d.node("x0.mid", 1) is None
    assert not any(name.endswith(".mid") for _, name in d._layout.row_names)
    edges = column_edges(2, 4, parallel=True)
    assert ("x1.pre", "m1") in edges and ("m1", "x1.post") in edges and ("attn1", "x1.post") in edges
    assert not any(".mid" in a or ".mid" in b for a, b in edges)
    y = {k: d.node(k, 1).sceneBoundingRect().center().y() for k in ("x1.pre", "attn1", "m1", "x1.post")}
    assert y["x1.pre"] > y["attn1"] > y["m1"] > y["x1.post"]  # bottom to top
    node = d.node("m1", 2)
    d.centerOn(node)
    with qtbot.waitSignal(d.nodeClicked) as blocker:
        qtbot.mouseClick(d.viewport(), Qt.LeftButton, pos=d.mapFromScene(node.sceneBoundingRect().center()))
    assert blocker.args == ["m1", 2] and node.selected
    # a parallel flow graph's MLP input edge comes from the residual between blocks, drawn at x1.pre
    graph = SimpleNamespace(nodes=[], threshold=0.0, n_layers=2, edges=[flow_edge(("x0.post", 2), ("m1", 2), 0.5),
                                                                        flow_edge(("m1", 2), ("x1.post", 2), 0.5)])
    overlay = flow_overlay(graph, graph.edges)
    assert [(s, t) for s, t, _ in overlay.edges] == [(("x1.pre", 2), ("m1", 2)), (("m1", 2), ("x1.post", 2))]
    d.set_overlay(overlay)
    assert len(d.edge_items()) == 2
    d.set_heads_shown(None, False)  # collapsing the heads keeps the parallel rows
    assert d.node("x1.mid", 0) is None and d.node("m1", 0) is not None and d.node("a1.0", 0) is None


def test_a_node_chosen_outside_the_diagram_is_scrolled_into_view(qtbot):
    """A 12-layer diagram is taller than its panel and scrolls: a site chosen in the site list or
    through a flow export's selection must be brought in, not left below the edge."""
    panel, d = gpt2_diagram(qtbot, n_tokens=8)
    panel.resize(700, 320)
    qtbot.waitUntil(lambda: d.viewport().height() < d.mapFromScene(d.sceneRect()).boundingRect().height())

    def shown(short, pos):
        return d.mapToScene(d.viewport().rect()).boundingRect().intersects(d.node(short, pos).sceneBoundingRect())

    for short, pos in (("x11.post", 7), ("x0.pre", 0), ("m6", 3)):
        d.set_selection(short, pos)
        assert shown(short, pos), (short, pos)
    d.set_selection("x11.post", 7)
    d._fit_if_auto()  # a resize refits: centred on the selection's layer, not the model's middle
    assert shown("x11.post", 7)


def test_heads_keep_their_readout_in_the_tooltip_where_labels_would_overlap(qtbot):
    """Twelve heads sit 8-9 pixels apart: their logit-lens labels would pile up over each other."""
    from app.diagram.layout import DiagramOverlay

    _, d = gpt2_diagram(qtbot, n_tokens=3)
    d.set_heads_shown(2, True)
    d.finish_columns()
    d.set_overlay(DiagramOverlay(labels={("a2.5", 1): "Mary", ("m2", 1): "John"},
                                 tooltips={("a2.5", 1): "lens: Mary", ("m2", 1): "lens: John"}))
    d.finish_overlay()
    head, mlp = d.node("a2.5", 1), d.node("m2", 1)
    assert head.label_item is None and "lens: Mary" in head.tooltip_text()
    assert mlp.label_item.text() == "John" and mlp.label_item.isVisible()
