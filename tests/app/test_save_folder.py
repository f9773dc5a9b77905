"""#31 item 8: the Save dialog opened in the repository folder (the current directory)."""
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.main_window import MainWindow
from app.settings import SettingsStore

ROOT = Path(__file__).resolve().parents[2]


def test_save_dialogs_start_in_documents_then_in_the_folder_last_used(qtbot, window, tmp_path, monkeypatch):
    asked: list[str] = []
    out = tmp_path / "exports"
    out.mkdir()

    def fake_dialog(parent, title, start, filter_text):
        asked.append(start)
        return str(out / Path(start).name), filter_text

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    w = window
    assert w.export_png("diagram") is not None
    first = Path(asked[0])
    assert first.name == "diagram.png"  # the suggested name, in a folder that is not the repository's
    assert not first.parent.resolve().is_relative_to(ROOT) and first.parent != Path(".")
    assert first.parent.is_absolute() and first.parent.is_dir()
    assert w.export_png("diagram") is not None
    assert Path(asked[1]).parent == out  # the next one starts where the last file went
    w.close()
    again = MainWindow(SettingsStore(), backend=w.engine._backend)  # and so does the next session
    qtbot.addWidget(again)
    again.show()
    with qtbot.waitSignal(again.engine.modelLoaded, timeout=5000):
        again.start()
    assert again.export_png("diagram") is not None
    assert Path(asked[2]).parent == out
    again.close()
