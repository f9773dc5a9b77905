"""The history keeps the last MAX_ENTRIES runs, newest first."""
from __future__ import annotations

from app.results.history import MAX_ENTRIES, HistoryEntry, HistoryPanel
from engine.query.types import QueryResult


def result(seed: int) -> QueryResult:
    return QueryResult("m", "counting", "Baa|a:2E", [0], [""], 0, "x0.post", "hook", "euclidean", 0.1, 8, [],
                       seed=seed)


def test_the_history_keeps_the_newest_runs_and_drops_the_oldest(qtbot):
    panel = HistoryPanel()
    qtbot.addWidget(panel)
    first = HistoryEntry(result(0), "m", "q")
    panel.add(first)
    for seed in range(1, MAX_ENTRIES + 5):
        panel.add(HistoryEntry(result(seed), "m", "q"))
    entries = panel.entries()
    assert len(entries) == MAX_ENTRIES == panel.list.count() == len(panel._entries)
    assert entries[0].result.seed == MAX_ENTRIES + 4 and entries[-1].result.seed == 5  # the newest first
    assert first not in entries and first.id not in panel._entries  # memory is released, not only hidden
    panel.list.setCurrentRow(0)
    assert panel.selected().result.seed == MAX_ENTRIES + 4


def test_an_entry_says_how_its_run_was_drawn(qtbot):
    """#31: an entry names its metric, seed and candidate source, so two runs of one query differ."""
    panel = HistoryPanel()
    qtbot.addWidget(panel)
    searched = result(7)
    searched.sampler, searched.metric = "search", "cosine"
    panel.add(HistoryEntry(result(3), "m", "q"))
    panel.add(HistoryEntry(searched, "m", "q"))
    newest, oldest = panel.list.item(0).text(), panel.list.item(1).text()
    assert "cosine · seed 7 · local search" in newest
    assert "euclidean · seed 3 · decoder" in oldest
