"""File > Import paper JSON: a file of the paper's web viewer, read by the engine (not on the GUI
thread), opens as a result in the window and the history; a damaged file is a message, and nothing
is shown."""
from __future__ import annotations

from engine.query.types import QueryOptions
from engine.store.paper_json import write_paper_json
from tests.app.fakes import FakeEngine


def test_an_exported_result_comes_back_into_the_window(qtbot, window, tmp_path, monkeypatch):
    engine = FakeEngine()
    inv = engine.load_inverter("fake-counting")
    result = engine.run_query(inv, "Bvvzccvczvvvzvcvc|v:8", "x1.post", ":", QueryOptions(candidates=256, seed=3))
    path = write_paper_json(result, tmp_path / "file.json")
    before = len(window.history.entries())
    with qtbot.waitSignal(window.resultShown, timeout=30_000):
        request = window.import_paper_json(str(path))
    assert request is not None and request.kind == "read"
    assert window.results.result().site_short == "x1.post"
    assert [s.tokens for s in window.results.result().samples] == [s.tokens for s in result.samples]
    assert len(window.history.entries()) == before + 1

    messages = []
    monkeypatch.setattr("app.results.export.show_message", lambda parent, title, text: messages.append(text))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with qtbot.waitSignal(window.engine.jobFailed, timeout=30_000):
        window.import_paper_json(str(bad))
    assert len(messages) == 1 and "bad.json" in messages[0] and "not valid JSON" in messages[0]
    assert len(window.history.entries()) == before + 1


def test_a_missing_file_is_a_message_at_once(qtbot, window, monkeypatch, tmp_path):
    messages = []
    monkeypatch.setattr("app.results.export.show_message", lambda parent, title, text: messages.append(text))
    assert window.import_paper_json(str(tmp_path / "gone.json")) is None
    assert len(messages) == 1 and "gone.json" in messages[0] and "cannot read it" in messages[0]
