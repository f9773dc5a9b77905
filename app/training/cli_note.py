"""The Train dialog's word on what it cannot do: a decoder for an opened folder or a Hugging Face
model (it lists only the bundled and user models, and has no corpus field) is trained on the
command line. The exact command, with the open model's folder filled in where there is one, is
shown selectable with a Copy button."""
from __future__ import annotations

import shlex

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.style import muted_css

TEMPLATE = "python main.py train-decoder --model {folder} --corpus FILE"


def command_for(folder: str | None = None) -> str:
    return TEMPLATE.format(folder=shlex.quote(folder) if folder else "FOLDER")


class CliNote(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel("A model opened from a folder or the Hugging Face cache is not listed here: train its "
                            "decoder on the command line (--corpus FILE: a text model's training texts, one per line):")
        self.label.setWordWrap(True)
        self.label.setStyleSheet(f"color: {muted_css(self)};")
        self.command = QLineEdit(command_for())
        self.command.setReadOnly(True)
        self.command.setObjectName("trainCommand")
        self.command.setToolTip("Run it in a terminal in the app's folder; then open the folder again here")
        self.copy_button = QPushButton("Copy command")
        self.copy_button.setAutoDefault(False)
        self.copy_button.clicked.connect(self.copy)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.command, 1)
        row.addWidget(self.copy_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.label)
        lay.addLayout(row)

    def set_folder(self, folder: str | None) -> None:
        self.command.setText(command_for(folder))
        self.command.setCursorPosition(0)  # the command's start shows, not the end of a long path

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.command.text())
