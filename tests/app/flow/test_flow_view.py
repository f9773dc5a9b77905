"""The flow graph over the model diagram, on the real engine (a small random counting model).

The engine's flow function is wrapped to record the thread it runs on and how often it runs;
everything else is the real app: debounce, flow thread, overlay, detail pane, export.
"""
import json
import shutil
import threading
import time

import pytest
from PySide6.QtCore import Qt, QThread, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from app.diagram.layout import _diagram_key
from app.flow.overlay import rank_change, token_text
from engine.flow.graph import FlowGraph
from engine.probed.sites import previous_resid
from engine.server.backend import real_backend
from engine.store.folders import user_models_dir
from tests.app.real_engine import make_tiny_model, requires_real_engine

pytestmark = requires_real_engine
LOAD_TIMEOUT_MS = 180_000
QUERY = "Baiaigiaaggi|g:3"


@pytest.fixture(scope="module")
def tiny_counting(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("flow-models") / "tiny-counting")


class RecordingFlow:
    """The real flow_for_query, recording where and how often it runs; optionally slow."""

    def __init__(self, real):
        self.real, self.calls, self.delay = real, [], 0.0
        self.hold = False  # when set, wait until the request is cancelled (a long graph the user stops)

    def __call__(self, inv, text, target=None, top_k=10, cancel=None):
        self.calls.append((QThread.currentThread(), threading.get_ident(), text))
        if self.delay:
            time.sleep(self.delay)  # on the flow thread: the GUI must keep running meanwhile
        if self.hold:
            cancel.wait(30)  # a safety net only: the test presses Stop
        return self.real(inv, text, target, top_k, cancel=cancel)


@pytest.fixture
def flow_window(qtbot, tiny_counting):
    shutil.copytree(tiny_counting, user_models_dir() / "tiny-counting")
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore

    store = SettingsStore()
    store.save(AppSettings(model="tiny-counting", query=QUERY))
    backend = real_backend()
    recorder = RecordingFlow(backend.flow_graph)
    backend.flow_graph = recorder
    w = MainWindow(store, backend=backend, save_settings=False)
    w.recorder = recorder
    qtbot.addWidget(w)
    w.resize(1700, 950)
    w.show()
    with qtbot.waitSignal(w.flow.graphShown, timeout=LOAD_TIMEOUT_MS):
        w.start()
    yield w
    w.close()


def edges_drawn(w) -> list:
    """The edge items once the overlay is drawn whole (a large one takes a few turns of the event loop)."""
    for _ in range(1000):
        if not w.diagram.overlay_pending():
            break
        QApplication.processEvents()
    assert not w.diagram.overlay_pending()
    return w.diagram.edge_items()


def drawn(w) -> list:
    return sorted(item.flow_edge for item in edges_drawn(w))


def as_drawn(edges) -> list:
    return sorted((_diagram_key(e[0], e[1]), _diagram_key(e[1]), float(e[2])) for e in edges)


def click_node(qtbot, w, short, pos):
    node = w.diagram.node(short, pos)
    w.diagram.centerOn(node)
    qtbot.mouseClick(w.diagram.viewport(), Qt.LeftButton, pos=w.diagram.mapFromScene(node.sceneBoundingRect().center()))


def type_query(qtbot, w, text):
    line = w.editor.combo.lineEdit()
    line.clear()
    qtbot.keyClicks(line, text)


def test_typing_a_query_draws_its_flow_graph_computed_off_the_gui_thread(qtbot, flow_window):
    w = flow_window
    before = len(w.recorder.calls)
    with qtbot.waitSignal(w.flow.graphShown, timeout=30_000) as blocker:
        type_query(qtbot, w, "Bvvzccvczvvvzvcvc|v:8")
    graph = blocker.args[0]
    assert graph.tokens == w.editor.tokens()
    assert len(w.recorder.calls) == before + 1  # one forward pass for the whole typed text (debounced)
    qthread, ident, text = w.recorder.calls[-1]
    assert ident != threading.get_ident()  # an engine worker's (here a thread: the real engine in-thread)
    assert text == "Bvvzccvczvvvzvcvc|v:8"
    assert len(edges_drawn(w)) == len(graph.edges_above(0.04)) > 0
    assert drawn(w) == as_drawn(graph.edges_above(0.04))
    node = graph.node("x1.post", 3)  # every residual node: its top-1 token, coloured by the target's probability
    item = w.diagram.node("x1.post", 3)
    assert item.label_item.isVisible() and item.label_item.text() == token_text(graph, node.top[0][0])
    from app.style import target_prob_hex

    assert item.readout_fill.name() == target_prob_hex(node.target_prob)
    assert w.diagram.node("x1.pre", 3).label_item.text() == w.diagram.node("x0.post", 3).label_item.text()
    assert f"{node.top[0][1]:.3f}" not in item.toolTip()  # formatted when hovered, not for every node
    item.hoverEnterEvent(None)  # what the scene calls when the pointer enters the node, before any tooltip
    assert f"{node.top[0][1]:.3f}" in item.toolTip()  # hover: the top tokens with probabilities


def test_an_invalid_query_takes_the_graph_down(qtbot, flow_window):
    w = flow_window
    type_query(qtbot, w, "B12")
    assert w.editor.tokens() is None
    assert w.flow.graph is None and not w.diagram.edge_items()


def test_the_gui_stays_responsive_and_stale_requests_are_dropped(qtbot, flow_window):
    w = flow_window
    w.recorder.delay = 0.6
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(20)
    shown = []
    w.flow.graphShown.connect(shown.append)
    type_query(qtbot, w, "Babcab|a:2")
    assert w.editor.tokens() is not None
    w.flow.request_now()  # no debounce: this one starts computing at once
    type_query(qtbot, w, "Bxyzzy|z:2")
    w.flow.request_now()  # queued behind it; the first becomes stale
    qtbot.waitUntil(lambda: bool(shown) and shown[-1].tokens == w.editor.tokens(), timeout=30_000)
    timer.stop()
    assert len(ticks) >= 10  # the GUI thread ran its timer while the flow thread computed
    assert [g.tokens for g in shown] == [w.editor.tokens()]  # the stale graph never reached the screen


def test_the_threshold_slider_changes_the_edges_drawn(qtbot, flow_window):
    w = flow_window
    graph, controls = w.flow.graph, w.diagram_panel.flow_controls
    assert controls.threshold() == pytest.approx(0.04)
    default = len(edges_drawn(w))
    controls.slider.setValue(15)
    assert len(edges_drawn(w)) == len(graph.edges_above(0.15)) < default
    assert drawn(w) == as_drawn(graph.edges_above(0.15))
    controls.slider.setValue(1)
    assert len(edges_drawn(w)) == len(graph.edges_above(0.01)) > default


def test_route_only_shows_exactly_the_route(qtbot, flow_window):
    w = flow_window
    graph, controls = w.flow.graph, w.diagram_panel.flow_controls
    controls.slider.setValue(8)
    controls.route.setChecked(True)
    end = (graph.output[0], w.target()[1])  # the route ends at the selected position, not the last
    assert w.flow.route_output() == end
    route = graph.route_to(end, threshold=0.08)
    assert 0 < len(route) < len(graph.edges_above(0.08))
    assert drawn(w) == as_drawn(route)
    off_route = next(n for n in graph.nodes if n.key not in {e[0] for e in route} | {e[1] for e in route}
                     and n.key != end)
    assert w.diagram.node(*off_route.key).opacity() < 1
    controls.route.setChecked(False)
    assert drawn(w) == as_drawn(graph.edges_above(0.08))


def test_the_route_follows_the_selected_position(qtbot, flow_window):
    w = flow_window
    graph, controls = w.flow.graph, w.diagram_panel.flow_controls
    controls.route.setChecked(True)
    for position in (3, len(graph.position_labels) - 1):
        w.set_target(w.target()[0], position)
        end = (graph.output[0], position)
        assert w.flow.route_output() == end
        assert drawn(w) == as_drawn(graph.route_to(end, threshold=controls.threshold()))
        assert f"route → {graph.output[0]} @ {position} " in controls.status.text()
    controls.route.setChecked(False)
    w.set_target(w.target()[0], 2)  # every edge drawn: the status still names the route's end
    assert f"route → {graph.output[0]} @ 2 " in controls.status.text()


def test_clicking_a_node_opens_the_detail_pane_with_its_top_tokens(qtbot, flow_window):
    w = flow_window
    graph = w.flow.graph
    colon = graph.position_labels.index(":")
    assert w.node_dock.isHidden()
    click_node(qtbot, w, "x1.post", colon)
    assert w.target() == ("x1.post", colon)  # still the InversionView selection
    assert w.node_dock.isVisible()
    pane, node = w.node_pane, graph.node("x1.post", colon)
    table = pane.top_table
    assert table.rowCount() == len(node.top)
    for r, (token, p) in enumerate(node.top):
        assert table.item(r, 1).text() == repr(token_text(graph, token))
        assert table.item(r, 2).text() == f"{p:.3f}"
    before = graph.node("x1.mid", colon)
    assert table.item(0, 3).text() == rank_change(node.top[0][0], 1, before)
    assert f"rank <b>{node.target_rank}</b>" in pane.target_label.text()
    assert pane.heatmap.isHidden() and pane.push_table.isHidden()


def test_a_head_node_shows_its_attention_pattern(qtbot, flow_window):
    w = flow_window
    graph = w.flow.graph
    t = len(graph.tokens)
    click_node(qtbot, w, "a1.0", 5)
    pane = w.node_pane
    assert pane.node.key == ("a1.0", 5) and pane.heatmap.isVisible()
    assert pane.heatmap.matrix.shape == (t, t)
    assert (pane.heatmap.matrix == graph.attention[1, 0]).all()
    assert pane.heatmap.highlighted == 5
    assert pane.push_table.rowCount() > 0
    assert pane.push_table.item(0, 0).text() == repr(token_text(graph, pane.node.promoted[0][0]))


def test_an_mlp_node_shows_its_top_neurons(qtbot, flow_window):
    w = flow_window
    with qtbot.waitSignal(w.flow.neuronsShown, timeout=30_000) as blocker:
        click_node(qtbot, w, "m0", 4)
    readouts = blocker.args[0]
    table = w.node_pane.neuron_table
    assert len(readouts) == table.rowCount() == 10 and table.isVisible()
    assert table.item(0, 0).text() == str(readouts[0].index)
    assert readouts[0].score >= readouts[-1].score


def test_the_pane_follows_the_selection_and_explains_attn_nodes(qtbot, flow_window):
    w = flow_window
    w.set_target("x1.mid", 3)
    assert w.node_dock.isHidden()
    w.node_dock.toggleViewAction().trigger()  # View > Flow graph node
    assert w.node_dock.isVisible() and w.node_pane.node.key == ("x1.mid", 3)
    click_node(qtbot, w, "x0.mid", 2)
    w.set_position(6)
    assert w.node_pane.node.key == ("x0.mid", 6)
    click_node(qtbot, w, "attn1", 2)
    assert w.node_pane.node is None and "heads" in w.node_pane.title.text()


@pytest.mark.parametrize("route_only", [False, True])
def test_export_json_holds_exactly_the_edges_on_screen(qtbot, flow_window, tmp_path, monkeypatch, route_only):
    w = flow_window
    controls = w.diagram_panel.flow_controls
    controls.slider.setValue(6)
    controls.route.setChecked(route_only)
    target = tmp_path / "flow.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    w.export_flow_json_action.trigger()
    doc = json.loads(target.read_text(encoding="utf-8"))
    shown = [(tuple(e["src"]), tuple(e["dst"]), e["weight"]) for e in doc["edges"]]
    assert [(s, d) for s, d, _ in shown] == [(e[0], e[1]) for e in w.flow.shown_edges]
    assert [wt for _, _, wt in shown] == pytest.approx([e[2] for e in w.flow.shown_edges], abs=1e-6)
    assert len(shown) == len(edges_drawn(w))
    assert doc["view"]["route_only"] is route_only and doc["view"]["edge_threshold"] == 0.06
    assert doc["threshold"] == 0.06 and len(doc["route"]) == len(w.flow.graph.route_to(threshold=0.06))
    again = FlowGraph.from_json(target.read_text(encoding="utf-8"))
    assert again.tokens == w.flow.graph.tokens and len(again.edges) == len(shown)


def test_export_png_and_a_failed_export_leaves_nothing(qtbot, flow_window, tmp_path):
    w = flow_window
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    written = w.export_flow("png", str(tmp_path / "flow"))
    assert written == tmp_path / "flow.png"
    image = QImage(str(written))
    assert not image.isNull() and image.size() == w.diagram.render_image().size()  # the diagram only
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert w.export_flow("json", str(blocker / "sub" / "flow.json")) is None
    qtbot.waitUntil(lambda: any(b.objectName() == "messageBox" and b.isVisible()
                                for b in QApplication.topLevelWidgets()), timeout=5000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "flow.png"]


def test_the_flow_png_is_the_diagram_alone_and_never_the_causal_checks_colours(qtbot, flow_window, tmp_path):
    """#31 item 8: the PNG grabbed the panel with its controls, and showed the patch colours
    while the causal check held the diagram."""
    from app.diagram.layout import DiagramOverlay

    w = flow_window
    plain = QImage(str(w.export_flow("png", str(tmp_path / "plain"))))
    panel = w.diagram_panel.grab()
    assert plain.size() != panel.size()  # not the panel: no slider, legend or Map button
    assert plain.size() == w.diagram.render_image().size()
    node = ("x1.post", 14)
    w.flow.hold(True)  # as the causal check does, painting its own colours
    w.diagram.set_overlay(DiagramOverlay(colors={node: "#ff00ff"}, labels={node: "99"}))
    w.diagram.finish_overlay()
    held = QImage(str(w.export_flow("png", str(tmp_path / "held"))))
    assert held == plain  # the flow graph's picture, not the check's
    assert w.diagram.node(*node).readout_fill is not None and w.flow._held  # the check's colours are back
    assert w.diagram.overlay().colors == {node: "#ff00ff"}
    plain.save("/tmp/shots/flow_export.png")


def test_helpers_name_the_node_before_and_rank_changes():
    assert previous_resid("x0.pre") is None and previous_resid("a1.0") is None
    assert previous_resid("x0.mid") == "x0.pre" and previous_resid("x1.mid") == "x0.post"
    assert previous_resid("x1.post") == "x1.mid"

    class Before:
        top = [(7, 0.5), (3, 0.3), (9, 0.2)]

    assert rank_change(3, 1, Before) == "▲1 (was 2)"
    assert rank_change(7, 2, Before) == "▼1 (was 1)"
    assert rank_change(9, 3, Before) == "="
    assert rank_change(4, 1, Before) == "new (was > 3)"
    assert rank_change(4, 1, None) == ""


def test_choosing_a_target_token_recolours_by_its_probability(qtbot, flow_window):
    w = flow_window
    combo = w.diagram_panel.flow_controls.target
    controls = w.diagram_panel.flow_controls
    assert controls.target_token() is None  # the model's own prediction by default
    with qtbot.waitSignal(w.flow.graphShown, timeout=30_000) as blocker:
        combo.setCurrentIndex(combo.findText("g"))
    graph = blocker.args[0]
    g = next(i for i, text in graph.vocab.items() if text == "g")  # the graph carries the labels it refers to
    assert set(graph.targets) == {g}
    assert w.recorder.calls[-1][2] == QUERY
    from app.style import target_prob_hex

    node = graph.node("x0.mid", 2)
    assert w.diagram.node("x0.mid", 2).readout_fill.name() == target_prob_hex(node.target_prob)


def test_a_50k_token_target_is_typed_with_completion_and_unknown_tokens_are_refused(qtbot):
    from app.flow.controls import FlowControls

    controls = FlowControls()
    qtbot.addWidget(controls)
    controls.show()
    vocabulary = [f"tok{i}" for i in range(50_000)] + ["␣Mary", "Mary", "␣the"]
    controls.set_vocabulary(vocabulary)
    combo = controls.target
    assert combo.count() == len(vocabulary) + 1  # the list and the completer share one model
    completer = combo.completer()
    completer.setCompletionPrefix("Mary")
    matches = {completer.completionModel().index(r, 0).data() for r in range(completer.completionModel().rowCount())}
    assert matches == {"␣Mary", "Mary"}  # found inside tokens, not only at their start
    emitted = []
    controls.targetChanged.connect(emitted.append)
    combo.lineEdit().setText("␣nobody")
    combo.lineEdit().editingFinished.emit()
    assert emitted == [] and controls.target_token() is None
    assert "not a token of this model" in controls.status.text() and "'␣nobody'" in combo.toolTip()
    combo.lineEdit().setText("␣Mary")
    combo.lineEdit().editingFinished.emit()
    assert emitted == ["␣Mary"] and controls.target_token() == "␣Mary"
    assert combo.styleSheet() == ""  # the error mark is gone
    controls.set_vocabulary(["␣Mary", "other"])  # another model that also has the token keeps the choice
    assert controls.target_token() == "␣Mary" and combo.currentText() == "␣Mary"
    controls.set_vocabulary(["a", "b"])
    assert controls.target_token() is None and combo.currentText() == "prediction"


def test_pruning_by_influence_draws_the_pruned_graph_and_exports_it_for_neuronpedia(qtbot, flow_window, tmp_path):
    from engine.flow.prune import influence_on

    w = flow_window
    graph, controls = w.flow.graph, w.diagram_panel.flow_controls
    controls.by_influence.setChecked(True)
    assert not controls.route.isEnabled() and controls.share_slider.isVisible() and not controls.slider.isVisible()
    assert controls.value_label.text() == "80%"
    end = w.flow.route_output()
    influence = influence_on(graph, end)
    kept = w.flow.pruned.nodes
    total = sum(influence.values())
    assert sum(influence[k] for k in kept) >= 0.8 * total - 1e-9
    assert drawn(w) == as_drawn(w.flow.pruned.edges) and w.flow.shown_edges == w.flow.pruned.edges
    assert all(e[0] in kept and e[1] in kept for e in w.flow.pruned.edges)
    faded = next(n.key for n in graph.nodes if n.key not in kept)
    assert w.diagram.node(*faded).opacity() < 1
    assert "nodes hold 80%" in controls.status.text()
    controls.set_node_share(0.5)
    assert len(w.flow.pruned.nodes) < len(kept) and "nodes hold 50%" in controls.status.text()

    written = w.export_flow("neuronpedia", str(tmp_path / "My Graph"))
    assert written == tmp_path / "My Graph.json"
    doc = json.loads(written.read_text(encoding="utf-8"))
    assert doc["metadata"]["slug"] == "my-graph" and doc["metadata"]["prompt"] == QUERY
    assert doc["metadata"]["prompt_tokens"] == graph.token_labels and doc["metadata"]["node_threshold"] == 0.5
    ids = [n["node_id"] for n in doc["nodes"]]
    assert len(ids) == len(set(ids))  # every node named once
    assert all(link["source"] in ids and link["target"] in ids for link in doc["links"])
    kinds = {n["feature_type"] for n in doc["nodes"]}
    assert {"embedding", "logit", "residual"} <= kinds
    logits = [n for n in doc["nodes"] if n["feature_type"] == "logit"]
    top = graph.node(*end).top
    assert [n["feature"] for n in logits] == [t for t, _ in top[:len(logits)]]
    assert sum(n["is_target_logit"] for n in logits) <= 1
    embeddings = {("x0.pre", p) for p in range(len(graph.tokens))}  # the prompt's tokens stay, as in circuit-tracer
    assert len(doc["nodes"]) - len(logits) == len(set(w.flow.pruned.nodes) | embeddings)
    controls.by_influence.setChecked(False)
    assert controls.route.isEnabled() and drawn(w) == as_drawn(graph.edges_above(controls.threshold()))


def test_a_parallel_attention_model_draws_its_flow_without_mid_and_the_pane_reads_x_pre(qtbot, tmp_path):
    """GPT-NeoX: the window opens the folder, the diagram has no x.mid row, and the pane compares
    x0.post with x0.pre (what came before it: attention and MLP both read x0.pre)."""
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore
    from tests.engine.helpers import make_text_folder

    assert previous_resid("x1.post", parallel=True) == "x0.post"
    folder = make_text_folder(tmp_path / "tiny-neox", "neox", n_ctx=32)
    store = SettingsStore()
    store.save(AppSettings(model=str(folder), query="When Mary went to the store"))
    w = MainWindow(store, backend=real_backend(), save_settings=False)
    qtbot.addWidget(w)
    w.resize(1500, 900)
    w.show()
    try:
        with qtbot.waitSignal(w.flow.graphShown, timeout=LOAD_TIMEOUT_MS):
            w.start()
        graph = w.flow.graph
        assert graph.parallel_attn_mlp and w.diagram.node("x0.mid", 1) is None
        assert w.diagram.node("m0", 1) is not None
        click_node(qtbot, w, "x0.post", 3)
        pane = w.node_pane
        assert pane.node.key == ("x0.post", 3)
        assert pane.top_table.horizontalHeaderItem(3).text() == "vs x0.pre"
        assert pane.top_table.item(0, 3).text() == rank_change(pane.node.top[0][0], 1, graph.node("x0.pre", 3))
        with qtbot.waitSignal(w.flow.neuronsShown, timeout=30_000):
            click_node(qtbot, w, "m1", 4)
        assert "x0.post @ 4" in pane.inputs.text()  # the MLP's input: the residual its block reads
    finally:
        w.close()


def test_stop_ends_a_graph_being_computed_and_compute_asks_again(qtbot, flow_window):
    w = flow_window
    w.recorder.hold = True
    before = len(w.recorder.calls)
    type_query(qtbot, w, "Bvvzccvczvvvzvcvc|v:8")
    button = w.flow.controls.compute_button
    qtbot.waitUntil(lambda: len(w.recorder.calls) == before + 1, timeout=10_000)  # computing on the flow thread
    assert button.isVisible() and button.text() == "Stop"
    assert w.flow.graph is None and "computing" in w.flow.controls.status.text()
    qtbot.mouseClick(button, Qt.LeftButton)
    # the engine raises Cancelled at its first look at the event: the request is dropped, not failed
    qtbot.waitUntil(lambda: not w.engine.waiting("flow"), timeout=10_000)
    assert w.flow.graph is None and not w.diagram.edge_items()
    assert w.flow.controls.status.text() == "flow graph stopped" and button.text() == "Compute"
    w.recorder.hold = False
    with qtbot.waitSignal(w.flow.graphShown, timeout=30_000) as blocker:
        qtbot.mouseClick(button, Qt.LeftButton)
    assert blocker.args[0].tokens == w.editor.tokens() and not button.isVisible()
    assert len(w.recorder.calls) == before + 2


def test_in_a_narrow_panel_the_controls_take_another_row_and_every_one_keeps_its_width(qtbot):
    """A 1,100-pixel window leaves the diagram panel about 380 pixels: the checkboxes and the
    target go to a row of their own, and the status has a row with the Stop button."""
    from app.flow.controls import FlowControls

    controls = FlowControls()
    qtbot.addWidget(controls)
    controls.set_status("computing the flow graph…")
    controls.set_computing("computing")
    controls.resize(380, 80)
    controls.show()
    qtbot.waitUntil(lambda: controls._spill.spilled, timeout=5000)
    controls.layout().activate()
    for widget in (controls.route, controls.by_influence, controls.target, controls.slider):
        assert widget.width() >= widget.minimumSizeHint().width(), widget  # nothing cut
    assert controls.status.width() > 150 and controls.compute_button.isVisible()
    assert controls.status.geometry().bottom() > controls.route.mapTo(controls, controls.route.rect().bottomLeft()).y()
    height = controls.sizeHint().height()
    controls.resize(max(900, controls._spill.needed() + 10), 80)
    qtbot.waitUntil(lambda: not controls._spill.spilled, timeout=5000)
    controls.layout().activate()
    one_row = controls.sizeHint().height()
    assert one_row < height  # a row fewer
    controls.set_computing(None)  # the button goes; its row keeps its height, so the diagram does not jump
    controls.layout().activate()
    assert controls.compute_button.isHidden() and controls.sizeHint().height() == one_row
