"""Start on the name of a model whose decoder is finished: ask before training over it.

A finished run leaves its checkpoint behind, so the engine takes a Start with that name as a
run to resume: it continued from the last step and saved the decoder again, replacing the one
the user had, without a word. The dialog now asks first (window-modal, never blocking).
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from engine.store.folders import list_models, run_path


def finished_model(name: str):
    """The user model `name` when it has a trained decoder and a run Start would resume, else None."""
    entry = next((e for e in list_models() if e.name == name and e.source == "user"), None)
    if entry is None or not entry.has_decoder or not run_path("decoder", entry.task, entry.path).is_file():
        return None
    return entry


def ask_to_train_over(parent, entry, go) -> QMessageBox:
    """Ask whether to continue `entry`'s finished run and replace its decoder; `go()` on yes."""
    box = QMessageBox(QMessageBox.Question, "Train over a finished model?",
                      f"{entry.name!r} already has a trained decoder ({entry.path}).\n\n"
                      "Start continues its finished run from the last checkpoint and saves the decoder again, "
                      "replacing the one it has. To keep it, choose another name.", QMessageBox.NoButton, parent)
    box.setObjectName("retrainQuestion")
    box.setAttribute(Qt.WA_DeleteOnClose)
    train = box.addButton("Continue and replace", QMessageBox.AcceptRole)
    keep = box.addButton("Keep it", QMessageBox.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.buttonClicked.connect(lambda button: go() if button is train else None)
    box.open()
    return box
