"""Issue #27 in the window: InversionView on any model the moment it opens. A model without a
decoder answers a query by the local search (the real engine), read by the flip test rather than
the decoder's base rates, with each query token's verdict under the token strip; the sampler
choice is saved like the other options; Run is refused only where the decoder is asked for and
there is none."""
from __future__ import annotations

import re
import shutil
from html import unescape
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt

from engine.probed.model import PAPER_CONFIGS
from engine.store.folders import user_models_dir
from engine.tasks import get_task
from tests.app.conftest import open_window
from tests.app.fakes import FakeEngine
from tests.app.real_engine import requires_real_engine
from tests.app.test_model_reopen import folder_without_decoder

LOAD_TIMEOUT_MS = 180_000  # the first load imports torch and transformer_lens on a busy 2-core machine


def plain(html: str) -> str:
    """What a rich-text label reads as: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", html)).replace("\xa0", " ")


def choose_sampler(w, value: str) -> None:
    box = w.options_bar.sampler_box
    box.setCurrentIndex(box.findData(value))


class SearchCapableEngine(FakeEngine):
    """As the real engine now: a folder without a decoder loads and can be queried (by the search)."""

    def load_inverter(self, entry, device=None):
        if entry.has_decoder:
            inv = super().load_inverter(entry, device)
            inv.has_decoder = inv.can_query = True
            return inv
        self.loads += 1
        return SimpleNamespace(entry=entry, probed=SimpleNamespace(task=get_task(entry.task), config=entry.probed),
                               sites=[], precision="fp32", can_query=True, has_decoder=False)


# ---- the real engine: a model folder with no decoder --------------------------------------------
@pytest.fixture(scope="module")
def no_decoder_source(tmp_path_factory):
    from tests.engine.helpers import make_model_folder

    return make_model_folder(tmp_path_factory.mktemp("models") / "plain-counting", "counting")


@requires_real_engine
def test_a_model_without_a_decoder_answers_a_query_by_local_search(qtbot, no_decoder_source):
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore
    from engine.explain.flips import flip_test

    shutil.copytree(no_decoder_source, user_models_dir() / "plain-counting")
    store = SettingsStore()
    store.save(AppSettings(model="plain-counting", query="Baiaigiaaggi|g:3", site="m1", candidates=192))
    w = MainWindow(store)  # the engine process
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.start()
    state = w.picker.state.text()
    assert "no decoder yet" in state and "local search answers queries" in state
    assert w.options_bar.sampler() == "auto"
    assert w.run_bar.run_button.isEnabled(), w.run_bar.run_button.toolTip()
    assert "by local search" in w.run_bar.target.text()

    with qtbot.waitSignal(w.engine.runFinished, timeout=120_000) as blocker:
        w.run_query()
    result = blocker.args[0]
    assert result.complete and result.sampler == "search" and "chains" in result.sampler_settings
    shown = w.results.result()
    assert shown.sampler == "search" and w.results.table_model.rowCount() == len(result.samples) > 0

    # the summary line is the flip test, not the decoder's base rates
    test = flip_test(shown)
    line = plain(w.results.preimage.text())
    assert w.results.preimage.isVisibleTo(w)
    assert line.lower().startswith(test.line().lower()) and "Within ε" not in line
    assert "must keep" in line and "can change" in line  # the token map's key
    tip = plain(w.results.preimage.toolTip())
    for f in test.features:
        assert f"{f.name}{f.query_value}{f.changed:,}{f.within:,}{f.verdict}".replace(" ", "") in tip.replace(" ", "")
    assert "at least 20 times" in tip and "2%" in tip
    # the run says how it was drawn; the rows say how far from the query each is
    assert "local search" in plain(w.results.title.text())
    assert w.results.title.toolTip() == result.sampler_settings
    assert "edits of the query" in w.results.legend.text()
    m = w.results.table_model
    row_tip = m.data(m.index(0, 0), 3)  # Qt.ToolTipRole
    first = m.sample(0)
    assert first.edits >= 0 and f"{first.edits} edit" in row_tip and "temperature" not in row_tip
    assert m.headerData(1, Qt.Horizontal) == "edits" and m.data(m.index(0, 1)) == str(first.edits)
    # no prob-diff colours: nothing asks the decoder-less engine for them
    assert w.colouring.missing(shown, range(len(shown.samples))) == []
    qtbot.wait(100)
    assert not w.colouring.busy() and all(not s.prob_diff for s in shown.samples)

    # the token map: each query token's verdict under the strip, its counts in the tooltip
    strip = w.editor.strip
    verdicts = strip.flip_verdicts()
    assert verdicts == [t.verdict for t in test.tokens] and len(verdicts) == strip.count()
    assert all(v == "after the position" for v in verdicts[shown.query_position + 1:])
    i = next(k for k, t in enumerate(test.tokens) if t.verdict in ("must keep", "can change", "too few changes"))
    assert f"changed it {test.tokens[i].changed:,} times" in strip.flip_tooltip(i)
    w.editor.set_text("Bxxqxqqmqx|m:1")  # another query: the bars were about the one before
    assert set(strip.flip_verdicts()) == {""}

    # the decoder, asked for by name, cannot run here: Run says why and what would
    choose_sampler(w, "decoder")
    assert not w.run_bar.run_button.isEnabled()
    why = w.run_bar.run_button.toolTip()
    assert "no decoder yet" in why and "'auto' or 'local search'" in why
    assert "Options changed" in w.results.stale_label.text() and "sampler" in w.results.stale_label.text()
    choose_sampler(w, "search")
    assert w.run_bar.run_button.isEnabled()
    w.close()


# ---- the fake engine: the choice and when Run is refused ----------------------------------------
def test_the_sampler_choice_is_saved_and_restored(qtbot, fake_models):
    from app.main_window import MainWindow
    from app.settings import SettingsStore

    w = open_window(qtbot, FakeEngine().backend())
    assert [w.options_bar.sampler_box.itemText(i) for i in range(3)] == ["auto", "decoder", "local search"]
    tip = w.options_bar.sampler_box.toolTip()
    assert "auto: the decoder where it was trained" in tip and "local search: no training needed" in tip
    choose_sampler(w, "search")
    assert w.options_bar.options().sampler == "search"
    w.close()  # saves the settings
    assert SettingsStore().load().sampler == "search"

    again = MainWindow(SettingsStore(), backend=FakeEngine().backend())
    qtbot.addWidget(again)
    assert again.options_bar.sampler_box.currentText() == "local search"
    assert again.options_bar.options().sampler == "search"
    again.close()


def test_a_bad_saved_sampler_falls_back_to_auto(qtbot, fake_models):
    import json

    from app.main_window import MainWindow
    from app.settings import SettingsStore, from_dict

    rejected = []
    assert from_dict({"sampler": "beam", "seed": 3}, rejected).sampler == "auto" and rejected == ["sampler"]
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"schema": 1, "settings": {"sampler": "beam"}}), encoding="utf-8")
    w = MainWindow(store, backend=FakeEngine().backend(), save_settings=False)
    qtbot.addWidget(w)
    assert w.options_bar.sampler() == "auto" and "sampler" in store.note
    w.close()


def test_run_is_refused_only_for_the_decoder_without_a_decoder(qtbot, fake_models, tmp_path):
    w = open_window(qtbot, SearchCapableEngine().backend())
    folder = folder_without_decoder(tmp_path / "mine")
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=10000):
        w.picker.open_path(str(folder))
    assert "local search answers queries" in w.picker.state.text()
    assert "Run needs a decoder" not in w.picker.state.text()
    button = w.run_bar.run_button
    for sampler in ("auto", "search"):
        choose_sampler(w, sampler)
        assert button.isEnabled() and button.toolTip() == w.run_bar.RUN_TIP, sampler
    choose_sampler(w, "decoder")
    assert not button.isEnabled()
    assert "mine has no decoder yet" in button.toolTip() and "'auto' or 'local search'" in button.toolTip()
    assert "no decoder yet" in plain(w.run_bar.target.text())
    assert w.run_query() is None and "no decoder yet" in w.statusBar().currentMessage()
    w.map_action.trigger()  # the map refuses the decoder too, and says what would map
    assert "Cannot map with the decoder" in w.diagram_panel.map_bar.legend.text()
    choose_sampler(w, "auto")
    assert button.isEnabled()
    # a model with a decoder: "decoder" runs on its trained sites, and is refused on the others
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=10000):
        w.choose_model(w.picker.find("fake-addition"))
    w.set_target("m1", 5)  # not one of addition's decoder sites
    assert button.isEnabled() and "the local search runs here" in plain(w.run_bar.target.text())
    choose_sampler(w, "decoder")
    assert not button.isEnabled() and "not trained on m1" in button.toolTip()
    w.set_target("a1.2", 5)
    assert button.isEnabled()
    w.close()


def test_a_required_node_on_the_map_is_drawn_strong_like_a_shared_one():
    from app.explain.map_view import FEATURE_COLOURS, _pale, map_overlay, node_tooltip
    from engine.explain.summary import FeatureShare
    from engine.explain.sweep import NodeReading

    def row(position, verdict):
        top = FeatureShare("count", "3", 0.99 if verdict == "required" else 0.6, 0.0, verdict)
        return NodeReading("m1", "blocks.1.hook_mlp_out", position, "a", 200, 50, top, (0.0, 0.1, 0.2))

    overlay, legend = map_overlay([row(3, "required"), row(4, "partly")], PAPER_CONFIGS["counting"].n_layers)
    assert legend == {"count": FEATURE_COLOURS[0]}
    assert overlay.colors[("m1", 3)] == FEATURE_COLOURS[0]  # strong, as "shared"
    assert overlay.colors[("m1", 4)] == _pale(FEATURE_COLOURS[0])
    assert "required (changing it left epsilon in 99%" in node_tooltip(row(3, "required"))


@requires_real_engine
def test_the_map_job_maps_a_model_without_a_decoder_by_local_search(no_decoder_source):
    """The engine's map job (engine/server/backend.py) on a decoder-less model: the task's sites,
    each node by local search (it mapped no node at all before)."""
    from engine.query.run import load_inverter
    from engine.server.backend import real_backend
    from engine.store.folders import find_model

    inv = load_inverter(find_model(str(no_decoder_source)), decoder_optional=True)
    seen = []
    params = {"text": "Baiaigiaaggi|g:3", "positions": [":"], "options": {"sampler": "auto", "candidates": 64}}
    answer = real_backend().jobs["map"](inv, params, lambda item, done, total: seen.append(item[1].sampler), None)
    assert len(answer.rows) >= 5 and set(seen) == {"search"}
