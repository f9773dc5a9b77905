"""Token colours on demand (app/results/colouring.py): the window's queries run without the
prob-diff colouring; a colour job on the engine thread colours the rows on screen first, then
the rest; scrolling re-prioritises, a new query or model cancels, the history keeps the colours."""
from __future__ import annotations

import pytest

from app.results.colouring import PART
from tests.app.conftest import open_window
from tests.app.fakes import FakeEngine, fake_prob_diff

TIMEOUT = 20_000  # generous: the machine may be busy; nothing here depends on speed


def run_and_wait(qtbot, w):
    with qtbot.waitSignal(w.engine.runFinished, timeout=TIMEOUT) as blocker:
        w.run_query()
    return blocker.args[0]


@pytest.fixture
def engine():
    fake = FakeEngine(chunk_delay=0.002)
    fake.colour_gate.clear()  # each test opens it when it has seen what it wants
    yield fake
    fake.colour_gate.set()


@pytest.fixture
def w(qtbot, engine, fake_models):
    window = open_window(qtbot, engine.backend())
    window.options_bar.candidates.setValue(1024)
    yield window
    engine.colour_gate.set()
    window.close()


def shown_rows(w) -> list:
    return [w.results.table_model.sample(r) for r in range(w.results.table_model.rowCount())]


def test_rows_arrive_plain_then_the_visible_ones_are_coloured_first(qtbot, w, engine):
    result = run_and_wait(qtbot, w)
    assert engine.options_seen[-1].colour is False  # the app's query leaves the colouring out
    assert len(result.samples) > 150  # many more than the table shows
    assert all(s.prob_diff == [] for s in shown_rows(w))  # drawn plain, not wrongly coloured
    w.results.table.viewport().repaint()  # painting plain samples is fine

    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 1, timeout=TIMEOUT)
    visible = w.colouring.visible_samples()
    assert 5 < len(visible) < len(result.samples)
    order = engine.colour_jobs[0]
    assert len(order) == PART and order[:len(visible)] == visible  # the rows on screen first
    assert order[len(visible):] == [i for i in range(len(result.samples)) if i not in visible][:PART - len(visible)]
    assert w.colouring.busy() and w.colouring.visible_missing() == visible

    changed = []
    w.results.table_model.dataChanged.connect(lambda a, b, roles=(): changed.append((a.row(), b.row())))
    with qtbot.waitSignal(w.colouring.idle, timeout=TIMEOUT):
        engine.colour_gate.set()
    assert changed and changed[0][0] == 0  # the first part repainted the top rows
    for s in shown_rows(w):  # every row: the fake engine's values, from the job
        assert s.prob_diff == fake_prob_diff(s.tokens)
    # then the others, a part per job (a map or a query queued meanwhile waits for one part at most)
    assert all(len(job) <= PART for job in engine.colour_jobs) and len(engine.colour_jobs) > 2
    assert sorted(i for job in engine.colour_jobs for i in job) == list(range(len(result.samples)))
    assert not w.colouring.busy()
    # the history's result is the one shown: it keeps them
    assert w.history.entries()[0].result.samples[0].prob_diff == fake_prob_diff(result.samples[0].tokens)


def test_scrolling_puts_the_rows_on_screen_first(qtbot, w, engine):
    result = run_and_wait(qtbot, w)
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 1, timeout=TIMEOUT)
    w.results.table.scrollToBottom()
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 2, timeout=TIMEOUT)  # the first one superseded
    visible = w.colouring.visible_samples()
    assert visible[-1] == len(result.samples) - 1
    assert engine.colour_jobs[1][:len(visible)] == visible
    qtbot.waitUntil(lambda: engine.colour_cancelled == 1, timeout=TIMEOUT)  # the first job stopped
    engine.colour_gate.set()
    qtbot.waitUntil(lambda: w.colouring.visible_missing() == [], timeout=TIMEOUT)
    bottom = result.samples[-1]
    assert bottom.prob_diff == fake_prob_diff(bottom.tokens)
    qtbot.waitUntil(lambda: all(s.prob_diff for s in result.samples), timeout=TIMEOUT)  # the rest follows


def test_a_new_query_cancels_the_colour_job(qtbot, w, engine):
    first = run_and_wait(qtbot, w)
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 1, timeout=TIMEOUT)
    w.options_bar.seed.setValue(w.options_bar.seed.value() + 1)
    second = run_and_wait(qtbot, w)  # answered although the colour job still waited at the gate
    assert engine.colour_cancelled == 1
    assert all(s.prob_diff == [] for s in first.samples)  # nothing of the cancelled job landed
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 2, timeout=TIMEOUT)  # the new result's own
    engine.colour_gate.set()
    qtbot.waitUntil(lambda: w.colouring.visible_missing() == [], timeout=TIMEOUT)
    assert second.samples[0].prob_diff == fake_prob_diff(second.samples[0].tokens)


def test_changing_the_model_cancels_the_colour_job(qtbot, w, engine):
    run_and_wait(qtbot, w)
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 1, timeout=TIMEOUT)
    index = next(i for i, e in enumerate(w.picker.entries()) if e.name == "fake-addition")
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=TIMEOUT):
        w.picker.choose(index)
    qtbot.waitUntil(lambda: engine.colour_cancelled == 1, timeout=TIMEOUT)
    assert not w.colouring.busy()


def test_colours_stay_with_the_result_across_epsilon_history_and_compare(qtbot, w, engine):
    engine.colour_gate.set()
    first = run_and_wait(qtbot, w)
    qtbot.waitUntil(lambda: all(s.prob_diff for s in w.results.result().samples), timeout=TIMEOUT)
    w.options_bar.epsilon.setValue(0.37)  # a re-flagged copy of the result: the same colours
    assert all(s.prob_diff == fake_prob_diff(s.tokens) for s in w.results.result().samples)
    w.options_bar.seed.setValue(w.options_bar.seed.value() + 1)
    run_and_wait(qtbot, w)
    qtbot.waitUntil(lambda: w.colouring.visible_missing() == [] and not w.colouring.busy(), timeout=TIMEOUT)
    jobs = len(engine.colour_jobs)
    entry = w.history.entries()[1]
    assert entry.result.samples[0].tokens == first.samples[0].tokens
    w.reopen(entry)
    assert all(s.prob_diff == fake_prob_diff(s.tokens) for s in w.results.result().samples)
    w.pin(entry, 0)
    side = w.compare.sides[0].result()
    assert all(s.prob_diff == fake_prob_diff(s.tokens) for s in side.samples)
    qtbot.wait(100)
    assert len(engine.colour_jobs) == jobs  # nothing left to colour: no new job


def test_a_failed_colour_job_is_a_message_and_the_rows_stay_plain(qtbot, w, engine):
    engine.fail_colour = RuntimeError("no colours today")
    engine.colour_gate.set()
    with qtbot.waitSignal(w.colouring.idle, timeout=TIMEOUT):
        run_and_wait(qtbot, w)
    assert "no colours today" in w.statusBar().currentMessage()
    assert all(s.prob_diff == [] for s in shown_rows(w))
    w.results.table.viewport().repaint()


def test_an_engine_without_colour_jobs_colours_in_the_query(qtbot, fake_models):
    engine = FakeEngine(chunk_delay=0.002)
    backend = engine.backend()
    del backend.jobs["colour"]
    window = open_window(qtbot, backend)
    result = run_and_wait(qtbot, window)
    assert engine.options_seen[-1].colour is True and all(s.prob_diff for s in result.samples)
    window.close()


def test_a_pinned_run_whose_colouring_was_cut_short_is_coloured_after_the_shown_one(qtbot, w, engine):
    first = run_and_wait(qtbot, w)  # the gate holds its colour job
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 1, timeout=TIMEOUT)
    w.options_bar.seed.setValue(w.options_bar.seed.value() + 1)
    run_and_wait(qtbot, w)  # the first run's colouring is cancelled, none of it done
    entry = w.history.entries()[1]
    assert entry.result.samples[0].tokens == first.samples[0].tokens
    assert all(not s.prob_diff for s in entry.result.samples)
    w.pin(entry, 0)
    engine.colour_gate.set()
    pinned = w.compare.sides[0].result()
    qtbot.waitUntil(lambda: all(s.prob_diff for s in pinned.samples), timeout=TIMEOUT)
    assert all(s.prob_diff == fake_prob_diff(s.tokens) for s in pinned.samples)
    assert all(s.prob_diff for s in w.results.result().samples)  # and the shown run is whole
    qtbot.wait(100)
    jobs = len(engine.colour_jobs)
    qtbot.wait(100)
    assert len(engine.colour_jobs) == jobs  # then nothing more to do


def test_an_export_for_the_papers_viewer_waits_for_the_shown_run_only(qtbot, w, engine, tmp_path, monkeypatch):
    """The pinned runs are coloured after the shown one; the shown run's file need not wait for them."""
    import app.results.export as export

    first = run_and_wait(qtbot, w)  # the gate holds its colour job: it stays plain
    qtbot.waitUntil(lambda: len(engine.colour_jobs) == 1, timeout=TIMEOUT)
    w.options_bar.seed.setValue(w.options_bar.seed.value() + 1)
    shown = run_and_wait(qtbot, w)
    w.pin(w.history.entries()[1], 0)
    pinned = w.compare.sides[0].result()
    assert pinned.samples[0].tokens == first.samples[0].tokens
    at_write, write = [], export._write_paper_json

    def counting_write(window, result, path):
        coloured = [sum(bool(s.prob_diff) for s in r.samples) for r in (result, pinned)]
        at_write.append(tuple(coloured))
        return write(window, result, path)

    monkeypatch.setattr(export, "_write_paper_json", counting_write)
    target = tmp_path / "shown.json"
    assert w.export_paper_json(str(target)) is None
    engine.colour_gate.set()
    qtbot.waitUntil(target.exists, timeout=TIMEOUT)
    assert at_write == [(len(shown.samples), 0)]  # the shown run whole, the pinned one not begun
    qtbot.waitUntil(lambda: all(s.prob_diff for s in pinned.samples), timeout=TIMEOUT)  # then it comes
