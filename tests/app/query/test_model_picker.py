"""The model picker offers the Hugging Face cache's task checkpoints beside the store's models."""
from __future__ import annotations

from tests.engine.store.test_hf_folders import cache_repo, paper_folder


def test_the_picker_lists_a_cached_paper_checkpoint_by_its_id(qtbot, tmp_path, monkeypatch):
    from app.query.model_picker import ModelPicker

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    paper = paper_folder(tmp_path / "src")
    snapshot = cache_repo(cache, "someone/counting-paper",
                          {n: (paper / n).read_bytes() for n in ("config.json", "pytorch_model.bin")})
    picker = ModelPicker()
    qtbot.addWidget(picker)
    entries = picker.entries()
    cached = [e for e in entries if e.source == "hub"]
    assert [e.name for e in cached] == ["someone/counting-paper"] and cached[0].path == snapshot
    assert [e.source for e in entries[:2]] == ["bundled", "bundled"]  # the store's models come first
    texts = [picker.combo.itemText(i) for i in range(picker.combo.count())]
    assert any(t.startswith("someone/counting-paper") and "counting" in t and "no decoder" in t for t in texts)


def test_folders_opened_twice_or_sharing_a_name_are_told_apart(qtbot, tmp_path, monkeypatch):
    from app.query.model_picker import ModelPicker
    from tests.app.real_engine import make_tiny_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    one = make_tiny_model(tmp_path / "a" / "counting", name="counting")
    two = make_tiny_model(tmp_path / "b" / "counting", name="counting")
    picker = ModelPicker()
    qtbot.addWidget(picker)
    before = picker.combo.count()
    for folder in (one, two, one, tmp_path / "a" / ".." / "a" / "counting"):
        assert picker.open_path(str(folder))
    assert picker.combo.count() == before + 2  # the same folder again is the same row
    texts = [picker.combo.itemText(i) for i in range(before, before + 2)]
    assert str(one) in texts[0] and str(two) in texts[1]
