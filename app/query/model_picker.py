"""Pick the probed model: bundled and user models by name, task and size, or a folder."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QWidget

from app.messages import show_message
from app.style import error_css, muted_css
from engine.errors import StoreError
from engine.store.folders import list_models, open_folder


def describe_entry(entry) -> str:
    extra = "" if entry.has_decoder else " · no decoder"
    # folders opened by hand can share a name: their path tells them apart
    where = f"  ·  {entry.path}" if entry.source == "folder" else ""
    return f"{entry.name}  ·  {entry.task}  ·  {entry.probed.describe()}  ·  {entry.source}{extra}{where}"


class ModelPicker(QWidget):
    modelChosen = Signal(object)  # ModelEntry

    def __init__(self, parent=None):
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(40)
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.combo.setToolTip("Bundled models, then your own (user models folder)")
        self.combo.activated.connect(self._on_activated)
        self.open_button = QPushButton("Open model folder…")
        self.open_button.setToolTip("Use a model folder (inversionview.json, probed.safetensors, decoder.safetensors; "
                                    "or a Hugging Face GPT-2 checkpoint of a task)")
        self.open_button.clicked.connect(self.ask_folder)
        self.state = QLabel()
        self.state.setTextFormat(Qt.PlainText)  # engine messages may hold paths and '<'
        self.state.setWordWrap(True)
        self.state.setStyleSheet(f"color: {muted_css(self)};")
        label = QLabel("&Model")
        label.setBuddy(self.combo)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(label)
        lay.addWidget(self.combo)
        lay.addWidget(self.open_button)
        lay.addWidget(self.state, 1)
        self.refresh()

    def refresh(self) -> None:
        """List the store's models afresh (a model just trained joins), keeping the folders opened
        by hand and the entry shown: the window still has that model open, so the picker must
        not jump to the first row (nor lose the folder, which list_models does not know)."""
        current, folders = self.current(), self.opened_folders()
        self.combo.clear()
        for entry in list_models(include_cache=True):  # the Hugging Face cache's task checkpoints too
            self._add(entry)
        self.remember(folders)  # re-read: a decoder trained into one since shows
        if current is not None and not self.select(str(current.path)):
            self.combo.setCurrentIndex(self._add(current))  # gone from the store, but still open

    def remember(self, folders: list[str]) -> None:
        """List the model folders opened in earlier sessions; ones that no longer open are skipped."""
        for folder in folders:
            try:
                self._add(open_folder(Path(folder)))
            except (StoreError, OSError):
                continue

    def opened_folders(self) -> list[str]:
        """The folders listed that were opened by hand, for the settings to remember."""
        return [str(e.path) for e in self.entries() if e.source == "folder"]

    def _add(self, entry) -> int:
        """The entry's row: a folder already listed (by its resolved path) is not added twice, but
        its row takes the newer entry (a decoder trained into the folder since shows, and loads)."""
        for i, known in enumerate(self.entries()):
            if Path(known.path).resolve() == Path(entry.path).resolve():
                if known.source == entry.source:  # the same folder, read again (the path as first spelled)
                    fresh = replace(entry, path=known.path)
                    self.combo.setItemData(i, fresh)
                    self.combo.setItemText(i, describe_entry(fresh))
                return i
        self.combo.addItem(describe_entry(entry), entry)
        self.combo.setItemData(self.combo.count() - 1, str(entry.path), Qt.ToolTipRole)
        return self.combo.count() - 1

    def entries(self) -> list:
        return [self.combo.itemData(i) for i in range(self.combo.count())]

    def current(self):
        return self.combo.currentData()

    def select(self, name_or_path: str) -> bool:
        """Show an entry (by name or folder) as current without emitting modelChosen."""
        for i, entry in enumerate(self.entries()):
            if name_or_path in (entry.name, str(entry.path)):
                self.combo.setCurrentIndex(i)
                return True
        return False

    def find(self, name_or_path: str):
        """The entry named so, or one opened from that folder; None when neither works."""
        for entry in self.entries():
            if name_or_path in (entry.name, str(entry.path)):
                return entry
        if name_or_path and Path(name_or_path).is_dir():
            try:
                entry = open_folder(Path(name_or_path))
            except StoreError:
                return None
            self.combo.setCurrentIndex(self._add(entry))
            return entry
        return None

    def choose(self, index: int) -> None:
        self.combo.setCurrentIndex(index)
        self._on_activated(index)

    def _on_activated(self, index: int) -> None:
        entry = self.combo.itemData(index)
        if entry is not None:
            self.modelChosen.emit(self._reread_decoder(index, entry))

    def _reread_decoder(self, index: int, entry):
        """The entry with its folder's decoder section read again: one trained into the folder
        since it was listed (`train-decoder --model FOLDER`) is then loaded, and the row says so.
        A folder that no longer opens keeps its entry; loading it says what is wrong."""
        try:
            fresh = replace(entry, decoder=open_folder(Path(entry.path), entry.source).decoder)
        except (StoreError, OSError):
            return entry
        if fresh != entry:
            self.combo.setItemData(index, fresh)
            self.combo.setItemText(index, describe_entry(fresh))
        return fresh

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open model folder")
        if folder:
            self.open_path(folder)

    def open_path(self, folder: str) -> bool:
        """Add a model folder and choose it; a StoreError is shown as a message, not raised."""
        try:
            entry = open_folder(Path(folder))
        except StoreError as e:
            self.set_state(f"Could not open {folder}", error=True)
            show_message(self, "Cannot open model folder", str(e))
            return False
        self.choose(self._add(entry))
        return True

    def set_state(self, text: str, error: bool = False) -> None:
        self.state.setText(text)
        self.state.setStyleSheet(f"color: {error_css(self) if error else muted_css(self)};")
