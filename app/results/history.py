"""The session's runs, kept in memory so any of them reopens instantly; pin two to compare.

The last MAX_ENTRIES runs are kept: a long session must not hold every result it ever made (a
1,000-query session otherwise kept growing). A run pinned in Compare stays there when it
leaves the list."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

_ids = itertools.count(1)
MAX_ENTRIES = 200


@dataclass
class HistoryEntry:
    result: object  # QueryResult (re-flagged when epsilon changes while it is shown)
    model_key: str  # the model folder, to reselect the model when reopened
    query_text: str
    when: float = field(default_factory=time.time)
    id: int = field(default_factory=lambda: next(_ids))

    def title(self) -> str:
        r = self.result
        state = "" if r.complete else " (stopped)"
        stamp = time.strftime("%H:%M:%S", time.localtime(self.when))
        label = r.query_labels[r.query_position] if r.query_position < len(r.query_labels) else ""
        source = "local search" if getattr(r, "sampler", "decoder") == "search" else "decoder"
        return (f"{stamp}  {r.model} · {r.site_short} @ {r.query_position} '{label}' · {r.query}\n"
                f"        {r.in_epsilon_count:,}/{r.candidates_done:,} within ε {r.epsilon:g} · {r.metric} · "
                f"seed {r.seed} · {source}{state}")


class HistoryPanel(QWidget):
    entryActivated = Signal(object)  # HistoryEntry to reopen
    pinRequested = Signal(object, int)  # HistoryEntry, side 0 (left) or 1 (right)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.setToolTip("Every run of this session. Click to reopen; pin two to compare them side by side.")
        self.list.itemActivated.connect(self._activate)
        self.list.itemClicked.connect(self._activate)
        self.pin_left = QPushButton("Pin left")
        self.pin_right = QPushButton("Pin right")
        self.pin_left.setToolTip("Show the selected run on the left of the Compare tab")
        self.pin_right.setToolTip("Show the selected run on the right of the Compare tab")
        self.pin_left.clicked.connect(lambda: self._pin(0))
        self.pin_right.clicked.connect(lambda: self._pin(1))
        buttons = QVBoxLayout()
        buttons.addWidget(self.pin_left)
        buttons.addWidget(self.pin_right)
        buttons.addStretch(1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.list, 1)
        lay.addLayout(buttons)
        self._entries: dict[int, HistoryEntry] = {}
        self._pinned: list[int | None] = [None, None]  # the entry id shown on each side of Compare

    def add(self, entry: HistoryEntry) -> None:
        self._entries[entry.id] = entry
        item = QListWidgetItem()
        item.setData(Qt.UserRole, entry.id)
        self._label(item, entry)
        self.list.insertItem(0, item)  # newest first
        self.list.setCurrentItem(item)
        while self.list.count() > MAX_ENTRIES:  # the oldest goes
            oldest = self.list.takeItem(self.list.count() - 1)
            self._entries.pop(oldest.data(Qt.UserRole), None)

    def update_entry(self, entry: HistoryEntry) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.UserRole) == entry.id:
                self._label(item, entry)

    def pinned_sides(self, entry: HistoryEntry) -> list[str]:
        """"left", "right", both or neither: where Compare shows this entry."""
        return [name for name, pinned in zip(("left", "right"), self._pinned) if pinned == entry.id]

    def mark_pinned(self, entry: HistoryEntry, side: int) -> None:
        """Compare shows `entry` on `side` now: mark it in the list (and unmark the one it replaced)."""
        self._pinned[side] = entry.id
        for i in range(self.list.count()):
            item = self.list.item(i)
            self._label(item, self._entries[item.data(Qt.UserRole)])

    def _label(self, item: QListWidgetItem, entry: HistoryEntry) -> None:
        sides = self.pinned_sides(entry)
        mark = f"◆ pinned {' and '.join(sides)} · " if sides else ""
        item.setText(mark + entry.title())
        font = item.font()
        font.setBold(bool(sides))
        item.setFont(font)
        where = f"Shown on the {' and '.join(sides)} of the Compare tab.\n" if sides else ""
        item.setToolTip(where + entry.result.summary())

    def entries(self) -> list[HistoryEntry]:
        """Newest first, as listed."""
        return [self._entries[self.list.item(i).data(Qt.UserRole)] for i in range(self.list.count())]

    def selected(self) -> HistoryEntry | None:
        item = self.list.currentItem()
        return self._entries.get(item.data(Qt.UserRole)) if item is not None else None

    def _activate(self, item: QListWidgetItem) -> None:
        self.entryActivated.emit(self._entries[item.data(Qt.UserRole)])

    def _pin(self, side: int) -> None:
        entry = self.selected()
        if entry is not None:
            self.mark_pinned(entry, side)
            self.pinRequested.emit(entry, side)
