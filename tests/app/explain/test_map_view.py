"""The information map in the window: nodes coloured and labelled by what their preimage shares,
progress and Cancel, a click on a mapped node opening its result, the flow graph held back."""
from __future__ import annotations

from app.explain.map_view import FEATURE_COLOURS, map_overlay
from engine.explain.summary import FeatureShare
from engine.explain.sweep import NodeReading


def _row(site, position, top=None, in_epsilon=50):
    return NodeReading(site, site, position, "x", 100, in_epsilon, top, (0.1, 0.2, 0.3))


def test_colours_follow_the_feature_and_its_verdict():
    shared = FeatureShare("count", "3", 1.0, 0.4, "shared")
    partly = FeatureShare("count", "3", 0.6, 0.4, "partly")
    letter = FeatureShare("query letter", "g", 0.95, 0.3, "shared")
    rows = [_row("x1.post", 14, shared), _row("x0.post", 14, partly), _row("a1.0", 13, letter),
            _row("m0", 3), _row("m1", 3, in_epsilon=2)]
    overlay, legend = map_overlay(rows, n_layers=2)
    assert legend == {"count": FEATURE_COLOURS[0], "query letter": FEATURE_COLOURS[1]}
    assert overlay.colors[("x1.post", 14)] == FEATURE_COLOURS[0]
    assert overlay.colors[("x0.post", 14)] != FEATURE_COLOURS[0]  # pale: partly
    assert overlay.colors[("x1.pre", 14)] == overlay.colors[("x0.post", 14)]  # the same vector, drawn twice
    assert overlay.labels[("x1.post", 14)] == "3"  # the value; the colour says which feature
    assert ("m0", 3) in overlay.colors and ("m1", 3) not in overlay.colors  # nothing shared / too few
    assert "too few" in overlay.tooltips[("m1", 3)]


def test_map_this_input_colours_the_diagram_and_opens_a_node(qtbot, window):
    bar = window.diagram_panel.map_bar
    window.options_bar.epsilon.setValue(0.05)  # the fake's nearest copies lie within 0.05
    with qtbot.waitSignal(window.map.mapFinished, timeout=60000) as done:
        bar.map_button.click()
    m = done.args[0]
    assert m.complete and len(window.map.rows) == len(m.rows) > 10
    assert bar.legend.isVisibleTo(window) and not window.diagram_panel.flow_legend.isVisibleTo(window)
    assert bar.clear_button.isVisibleTo(bar) and not bar.cancel_button.isVisibleTo(bar)
    shared = [r for r in m.rows if r.top is not None]
    assert shared, "the fake's samples share the query's letters at some nodes"
    row = shared[0]
    node = window.diagram.node(row.site, row.position)
    assert node.readout_fill is not None and node.label_item.text() == str(row.top.query_value)[:5]
    before = len(window.history.entries()) if hasattr(window.history, "entries") else None
    window.diagram.node_clicked(row.site, row.position)
    shown = window.results.result()
    assert (shown.site_short, shown.query_position) == (row.site, row.position)
    assert f"reads <b>{row.reading()}</b>" in bar.legend.text()
    if before is not None:
        assert len(window.history.entries()) == before + 1
    bar.clear_button.click()
    assert not node.has_readout and not window.map.rows
    assert window.diagram_panel.flow_legend.isVisibleTo(window) and not bar.legend.isVisibleTo(window)


def test_a_map_can_be_cancelled(qtbot, fake_models):
    from tests.app.conftest import open_window
    from tests.app.fakes import FakeEngine

    engine = FakeEngine(chunk_delay=0.02)
    window = open_window(qtbot, engine.backend())
    bar = window.diagram_panel.map_bar
    window.map.map_requested()
    assert bar.cancel_button.isVisibleTo(bar)
    qtbot.waitUntil(lambda: len(window.map.rows) >= 2, timeout=30000)
    bar.cancel_button.click()
    assert not window.map.running and not bar.cancel_button.isVisibleTo(bar)
    assert "cancelled" in bar.legend.text()
    rows = len(window.map.rows)
    qtbot.wait(200)
    assert len(window.map.rows) == rows  # no rows after the cancel
