"""The query editor: type a query or pick an example, see it checked inline and as a token strip.

The task's own parser (task.parse_query) decides what is valid, so the message under the field
is the engine's one-line TaskInputError: what is wrong and what is allowed.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.query.token_strip import TokenStrip
from app.style import error_css
from engine.tasks import TaskInputError

RANDOM_ITEM = "random input"


class QueryEditor(QWidget):
    queryChanged = Signal()  # text edited: read text(), tokens(), error()
    positionClicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._task = None
        self._tokens: list[int] | None = None
        self._labels: list[str] = []
        self._error = ""
        self._rng = np.random.default_rng()

        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.NoInsert)
        self.combo.setMinimumContentsLength(34)
        self.combo.lineEdit().setPlaceholderText("type a query, or pick an example")
        self.combo.setToolTip("The query input. B and E are added when left out. Pick 'random input' for a fresh one.")
        self.combo.editTextChanged.connect(self._on_text)
        self.combo.activated.connect(self._on_pick)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setStyleSheet(f"color: {error_css(self)};")
        self.message.hide()
        self.strip = TokenStrip()
        self.strip.positionClicked.connect(self.positionClicked)
        self.strip.keepToggled.connect(self._toggle_keep)
        strip_scroll = QScrollArea()
        strip_scroll.setWidget(self.strip)
        strip_scroll.setWidgetResizable(True)
        strip_scroll.setFrameShape(QScrollArea.NoFrame)
        strip_scroll.setFixedHeight(self.strip.sizeHint().height() + 16)
        strip_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)

        row = QHBoxLayout()
        label = QLabel("&Query")
        label.setBuddy(self.combo)
        row.addWidget(label)
        row.addWidget(self.combo, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.message)
        lay.addWidget(strip_scroll)

    # ---- state ------------------------------------------------------------------------
    def set_task(self, task, text: str | None = None) -> None:
        """Examples of the task in the picker; keep the current text when it is still valid."""
        self._task = task
        keep = self.text() if text is None else text
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(task.examples())
        if task.has_generator:
            self.combo.addItem(RANDOM_ITEM)
        self.combo.setToolTip(f"The query input: {task.format_hint()}")
        self.combo.blockSignals(False)
        try:
            task.parse_query(keep)
        except TaskInputError:
            keep = keep if text is not None else task.examples()[0]
        self.set_text(keep)

    def set_text(self, text: str) -> None:
        self.combo.setEditText(text)
        self._on_text(text)  # setEditText does not signal when the text is unchanged

    def text(self) -> str:
        return self.combo.currentText()

    def tokens(self) -> list[int] | None:
        """Token ids of a valid query (BOS..EOS), or None."""
        return self._tokens

    def labels(self) -> list[str]:
        return self._labels

    def error(self) -> str:
        return self._error

    def kept(self) -> tuple[int, ...]:
        """The positions the local search keeps (right-click on the token strip), in order."""
        return tuple(sorted(self.strip.kept()))

    def _toggle_keep(self, index: int) -> None:
        self.strip.set_kept(self.strip.kept() ^ {index})

    def set_selected_position(self, index: int) -> None:
        self.strip.set_selected(index)

    def _cut_note(self, text: str) -> str:
        """A text as long as the field holds was cut there (a QLineEdit drops the rest of a paste
        without a word): say so, and to how many characters, so the error after it makes sense."""
        limit = self.combo.lineEdit().maxLength()
        if len(text) < limit:
            return ""
        pasted = len(QGuiApplication.clipboard().text())
        had = f" of the {pasted:,} pasted" if pasted > len(text) else ""
        return f"The text was cut to its first {len(text):,} characters{had}: the query field holds no more."

    # ---- reactions ----------------------------------------------------------------------
    def _on_pick(self, index: int) -> None:
        if self.combo.itemText(index) == RANDOM_ITEM and self._task is not None:
            ids = self._task.random_inputs(1, self._rng)[0]
            self.set_text(self._task.query_text(ids))

    def _on_text(self, text: str) -> None:
        if self._task is None or text == RANDOM_ITEM:
            return
        task = self._task
        before = self._tokens
        try:
            self._tokens = task.parse_query(text)
            if self._tokens != before:
                self.strip.set_kept(set())  # kept tokens belong to the query they were kept in
            self._labels = task.position_labels(self._tokens)
            self._error = ""
            self.strip.set_tokens(task.vocab.token_strings(self._tokens), self._labels, live=True)
        except TaskInputError as e:
            self._tokens, self._labels, self._error = None, [], str(e)
            pieces, bad = task.rejected_pieces(text)
            self.strip.set_tokens(pieces, [], bad=bad, live=False)
        cut = self._cut_note(text)
        message = f"{cut} {self._error[:1].upper()}{self._error[1:]}".strip() if cut else self._error
        self.message.setText(message)
        self.message.setVisible(bool(message))
        self.combo.lineEdit().setStyleSheet(f"border: 1px solid {error_css(self)};" if self._error else "")
        self.queryChanged.emit()
