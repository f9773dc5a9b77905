"""Error and information messages that never block: a modal exec() would stall the event loop
(and every test); open() shows the same dialog window-modally and returns at once."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox


def show_message(parent, title: str, text: str, icon=QMessageBox.Warning) -> QMessageBox:
    box = QMessageBox(icon, title, text, QMessageBox.Ok, parent)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.setObjectName("messageBox")
    box.open()
    return box
