"""The causal check in the window, on the real engine and the bundled counting model: a flip runs
a real patching job whose rows and colours match engine.patching computed here, a result's
sample becomes the corrupted input, bad input is one red line, Cancel and Clear work, and the
information map and the check never draw over each other."""
from __future__ import annotations

import pytest

from app.patching.overlay import share_colour
from app.style import ERROR
from engine.server.backend import real_backend
from tests.app.conftest import open_window
from tests.app.real_engine import requires_real_engine

pytestmark = requires_real_engine
QUERY = "Baiaigiaaggi|g:3"
FLIPPED = "Baiaiaiaaggi|g:2"  # 5 'g' -> 'a' and the answer 3 -> 2
LOAD_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def expected():
    """The same check computed directly: engine.patching on the same model and inputs."""
    from engine.patching.run import patch_nodes
    from engine.patching.setup import flip_one, make_setup
    from engine.store.folders import find_model, load_probed

    probed = load_probed(find_model("counting"))
    task = probed.task
    clean = task.parse_query(QUERY)
    corrupt = flip_one(task, flip_one(task, clean, 5, "a"), "N", "2")
    return patch_nodes(probed, make_setup(task, clean, corrupt))


def counting_window(qtbot, backend=None):
    return open_window(qtbot, backend, model="counting", query=QUERY)  # None: the engine process


@pytest.fixture
def window(qtbot):
    w = counting_window(qtbot)
    yield w
    w.close()


def flip(panel, position: int, token: str) -> None:
    panel.flip_position.setCurrentIndex(position)
    panel.flip_token.setCurrentText(token)
    panel.flip_button.click()


def run_check(qtbot, w, timeout=60_000):
    with qtbot.waitSignal(w.patch.reportShown, timeout=timeout) as shown:
        w.patch_panel.run_button.click()
    w.diagram.finish_overlay()
    return shown.args[0]


def test_a_flip_runs_a_real_check_ranked_by_share_and_painted_on_the_diagram(qtbot, window, expected):
    w, panel = window, window.patch_panel
    w.patch_action.trigger()
    assert w.tabs.currentWidget() is panel and panel.clean.text() == QUERY
    assert panel.answer_position.currentText() == "14 ':'" and "task's" in panel.answer_note.text()
    flip(panel, 5, "a")
    flip(panel, 15, "2")
    assert panel.corrupt.text() == FLIPPED and "5 'g'→'a', 15 '3'→'2'" in panel.note.text()
    report = run_check(qtbot, w)

    m = panel.table_model
    assert m.rowCount() == len(expected.effects) == 126
    shares = [m.effect(r).share for r in range(m.rowCount())]
    assert shares == sorted(shares, reverse=True)
    want = {e.node: e for e in expected.effects}
    for got in report.effects:
        assert got.metric == pytest.approx(want[got.node].metric, abs=1e-4)
    top = {m.effect(r).node: r for r in range(m.rowCount()) if m.effect(r).share > 0.999}
    assert "x1.post@14" in top and want["x1.post@14"].share == pytest.approx(1.0, abs=1e-4)
    assert m.index(top["x1.post@14"], 3).data() == "100%"
    assert "clean logit diff 14.95 · corrupt −18.12" in panel.header.text()

    assert w.flow._held and panel.clear_button.isVisibleTo(panel) and panel.legend.isVisibleTo(panel)
    strong = w.diagram.node("x1.post", 14)
    assert strong.readout_fill.name() == share_colour(1.0) and strong.label_item.text() == "100"
    assert w.diagram.node("x0.post", 13).readout_fill == w.diagram.node("x1.pre", 13).readout_fill  # one vector
    quiet = w.diagram.node("x0.pre", 2)
    assert quiet.readout_fill is None and "share of the effect: 0%" in quiet.toolTip()

    panel.table.selectRow(top["x1.post@14"])
    assert w.target() == ("x1.post", 14)
    w.diagram.node_clicked("a1.0", 14)
    assert m.effect(panel.table.currentIndex().row()).node == "a1.0@14"


def test_a_result_row_becomes_the_corrupted_input(qtbot, window):
    w = window
    w.options_bar.candidates.setValue(w.options_bar.candidates.minimum())
    with qtbot.waitSignal(w.engine.runFinished, timeout=120_000):
        w.run_query()
    table = w.results.table
    assert table.model().rowCount() > 0
    table.selectRow(0)
    assert w.patch.use_action in table.actions()
    w.patch.use_action.trigger()
    sample = table.model().sample(0)
    assert w.patch_panel.corrupt.text() == w.session.task.query_text(sample.tokens)
    assert w.tabs.currentWidget() is w.patch_panel


def test_bad_inputs_come_back_as_one_red_line(qtbot, window):
    w, panel = window, window.patch_panel
    panel.corrupt.setText(QUERY + "3")  # a token longer
    assert "18 tokens long and the query 17" in panel.note.text()
    for text, words in ((QUERY + "3", "same length"), ("Baiaiaiaaggi|g:3", "choose the probability metric")):
        panel.corrupt.setText(text)
        with qtbot.waitSignal(w.engine.jobFailed, timeout=60_000):
            panel.run_button.click()
        shown = panel.message.text()
        assert words in shown and ERROR in shown and "Traceback" not in shown and "\n" not in shown
        assert w.patch.report is None and not panel.cancel_button.isVisibleTo(panel)


def test_cancel_stops_the_job_and_shows_nothing(qtbot):
    backend = real_backend()
    real, seen = backend.jobs["patch"], {}

    def slow(inv, params, report, cancel):
        seen["started"] = True
        seen["cancelled"] = cancel.wait(10)  # a long job, as on a big model
        return real(inv, params, report, cancel)

    backend.jobs["patch"] = slow
    w = counting_window(qtbot, backend)
    panel = w.patch_panel
    panel.corrupt.setText(FLIPPED)
    panel.run_button.click()
    assert w.patch.running and panel.cancel_button.isVisibleTo(panel)
    qtbot.waitUntil(lambda: seen.get("started", False), timeout=10_000)  # cancelled while it runs
    panel.cancel_button.click()
    assert not w.patch.running and not panel.cancel_button.isVisibleTo(panel)
    assert "Cancelled" in panel.message.text()
    qtbot.waitUntil(lambda: seen.get("cancelled") is True, timeout=10_000)
    qtbot.wait(200)
    assert w.patch.report is None and panel.table_model.rowCount() == 0 and not w.flow._held
    w.close()


def test_clear_gives_the_diagram_back_and_the_map_and_the_check_take_turns(qtbot, window):
    w, panel = window, window.patch_panel
    panel.corrupt.setText(FLIPPED)
    run_check(qtbot, w)
    assert w.flow._held and w.diagram.node("x1.post", 14).readout_fill is not None
    panel.clear_button.click()
    assert not w.flow._held and w.diagram.node("x1.post", 14).readout_fill is None
    assert panel.table_model.rowCount() == 0 and not panel.clear_button.isVisibleTo(panel)

    run_check(qtbot, w)
    w.map.start(w.session.model_key, QUERY, 2)  # a map starting takes the diagram: the check steps aside
    assert w.patch.report is None and w.map.running and w.flow._held
    w.map.cancel()
    w.map.rows = ["a row on the diagram"]
    run_check(qtbot, w)  # and the check, drawn, clears the map
    assert w.map.rows == [] and w.flow._held and w.patch.report is not None


def test_a_changed_query_takes_the_stale_answer_down(qtbot, window):
    w, panel = window, window.patch_panel
    panel.corrupt.setText(FLIPPED)
    run_check(qtbot, w)
    w.editor.set_text("Baiaigiaaggi|a:5")
    assert w.patch.report is None and not w.flow._held and "run it again" in panel.message.text()
    assert panel.clean.text() == "Baiaigiaaggi|a:5"
