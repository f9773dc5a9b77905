"""The "Causal check" tab: the two inputs, how to make the corrupted one, Run, and the answer.

Only widgets and their states live here; PatchController (controller.py) fills and reads them.
The clean input is the query, shown read-only so that what is being patched is never in doubt;
the corrupted one can be typed, taken from a result's sample, or made by flipping one token.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.patching.overlay import legend_html
from app.patching.table import NODE, PATCHED, POSITION, SHARE, PatchTableModel, ShareBarDelegate
from app.progress import JobProgress
from app.style import error_css, muted_css

METRIC_CHOICES = (("logit difference", "logit_diff"), ("probability of the clean answer", "prob"))
INTRO = ("Patch each node of the clean run with its activation from the corrupted run: a node's share says "
         "how much of the difference in the answer it carries by itself (100%: all of it).")


class PatchPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        intro.setStyleSheet(f"color: {muted_css()};")
        self.clean = QLineEdit()
        self.clean.setReadOnly(True)
        self.clean.setToolTip("The clean input is the query above; edit the query to change it")
        self.corrupt = QLineEdit()
        self.corrupt.setPlaceholderText("an input of the same length, e.g. the query with one token changed")
        self.corrupt.setToolTip("The corrupted input: type it, flip a token below, or right-click a result "
                                "row > Use as corrupted input")
        self.from_result = QPushButton("Use selected result")
        self.from_result.setToolTip("The sample selected in the Results tab becomes the corrupted input")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.flip_position = QComboBox()
        self.flip_position.setToolTip("The position whose token is replaced")
        self.flip_token = QComboBox()
        self.flip_token.setToolTip("The token put there")
        self.flip_token.setMinimumContentsLength(4)
        self.flip_button = QPushButton("Flip")
        self.flip_button.setToolTip("The corrupted input becomes the query (or the corrupted input, when it is "
                                    "already one) with this token replaced")
        self.metric_box = QComboBox()
        for text, key in METRIC_CHOICES:
            self.metric_box.addItem(text, key)
        self.metric_box.setToolTip("logit difference: logit[clean answer] − logit[corrupted answer] (the two inputs "
                               "need different answers); probability: p(clean answer)")
        self.answer_position = QComboBox()
        self.answer_position.setToolTip("Whose logits are read: by default the task's answer position")
        self.answer_note = QLabel()
        self.answer_note.setStyleSheet(f"color: {muted_css()};")
        self.run_button = QPushButton("Run check")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Take the answer off the diagram and give it back to the flow graph")
        self.progress = QProgressBar()
        self.job = JobProgress(self.progress)  # "105 / 1,332 nodes · about 0:40 left", in a bar that fits it
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.header = QLabel()
        self.header.setTextFormat(Qt.RichText)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table_model = PatchTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setItemDelegateForColumn(SHARE, ShareBarDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        for col, width in ((NODE, 80), (POSITION, 80), (PATCHED, 130)):
            self.table.setColumnWidth(col, width)
        hh.setSectionResizeMode(SHARE, QHeaderView.Stretch)
        self.legend = QLabel(legend_html())
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("font-size: 8pt;")

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Clean", self.clean)
        corrupt_row = QHBoxLayout()
        corrupt_row.addWidget(self.corrupt, 1)
        corrupt_row.addWidget(self.from_result)
        form.addRow("&Corrupted", corrupt_row)
        form.labelForField(corrupt_row).setBuddy(self.corrupt)
        form.addRow("", self.note)
        flip_row = QHBoxLayout()
        flip_row.addWidget(QLabel("flip position"))
        flip_row.addWidget(self.flip_position)
        flip_row.addWidget(QLabel("to"))
        flip_row.addWidget(self.flip_token)
        flip_row.addWidget(self.flip_button)
        flip_row.addStretch(1)
        form.addRow("Or", flip_row)
        read_row = QHBoxLayout()
        read_row.addWidget(self.metric_box)
        read_row.addWidget(QLabel("at"))
        read_row.addWidget(self.answer_position)
        read_row.addWidget(self.answer_note, 1)
        form.addRow("Metric", read_row)
        run_row = QHBoxLayout()
        for w in (self.run_button, self.cancel_button, self.progress, self.clear_button):
            run_row.addWidget(w, 1 if w is self.progress else 0)  # the bar grows to show the time left
        run_row.addStretch()  # after the bar: it takes the room it can use first
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addLayout(run_row)
        lay.addWidget(self.message)
        lay.addWidget(self.header)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.legend)
        self.set_state("idle")
        self.set_note("", ok=True)

    # ---- states -------------------------------------------------------------------------
    def set_state(self, state: str) -> None:
        """idle, running, or shown (an answer is on the diagram and in the table)."""
        running = state == "running"
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.clear_button.setVisible(state == "shown")
        self.legend.setVisible(state == "shown")
        self.header.setVisible(state != "idle" or bool(self.table_model.report))

    def metric_key(self) -> str:
        return self.metric_box.currentData()

    def set_note(self, text: str, ok: bool) -> None:
        self.note.setText(text)
        self.note.setStyleSheet(f"color: {muted_css() if ok else error_css()};")
        self.note.setVisible(bool(text))

    def show_error(self, text: str) -> None:
        """One line in red (an engine message, never a traceback)."""
        self.message.setText(f"<span style='color:{error_css()}'>{escape(text)}</span>")
        self.message.show()

    def show_message(self, text: str) -> None:
        self.message.setText(f"<span style='color:{muted_css()}'>{escape(text)}</span>" if text else "")
        self.message.setVisible(bool(text))

    def set_progress(self, done: int, total: int) -> None:
        self.job.report(done, total)
