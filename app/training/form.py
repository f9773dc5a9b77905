"""The Train decoder dialog's choices: base model, new model name, decoder size, time, start weights.

Plain widgets and the rules that need no engine: which models can be a base (their probed
weights are there to copy), the suggested name, and when starting from the base's decoder is
allowed (the same size: its weights are loaded as they are). The engine checks the name when
the run starts (engine.decoder.job.new_user_model).
"""
from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from app.style import muted_css
from engine.store.folders import list_models

D_MODELS = (64, 128, 256)
DEFAULT_D_MODEL = 128
DEFAULT_LAYERS = 2
DEFAULT_MINUTES = 10.0
DEFAULT_CHECK_MINUTES = 2.0


def trainable_bases() -> list:
    """Models whose probed weights are there to copy (bundled first, then the user's)."""
    return [e for e in list_models() if e.huggingface or (e.path / "probed.safetensors").is_file()]


def decoder_size(entry) -> dict:
    """The model's decoder config ({} without a decoder): d_model, n_layers, n_heads, ..."""
    if entry is None or not entry.has_decoder:
        return {}
    return dict((entry.decoder or {}).get("config") or {})


def _row(*widgets) -> QWidget:
    lay = QHBoxLayout()
    lay.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        if isinstance(w, int):
            lay.addSpacing(w)
        else:
            lay.addWidget(w)
    lay.addStretch(1)
    row = QWidget()
    row.setLayout(lay)
    return row


class TrainForm(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Decoder", parent)
        self.extra_settings: dict = {}  # more DecoderTrainConfig fields (batch_size, check_queries, ...)
        self._name_auto = True  # the name follows base, size and minutes until the user types one
        self._init_allowed = False  # the base's decoder has the chosen size
        self._editable = True
        self.base = QComboBox()
        self.base.setToolTip("The probed model the decoder learns to invert; its weights are copied into the new model")
        self.name = QLineEdit()
        self.name.setToolTip("The new model's name (letters, digits, '-', '_', '.'): a folder in your user models. "
                             "The name of a stopped run resumes it.")
        self.d_model = QComboBox()
        for d in D_MODELS:
            self.d_model.addItem(str(d), d)
        self.d_model.setCurrentIndex(D_MODELS.index(DEFAULT_D_MODEL))
        self.d_model.setToolTip("The decoder's width; the bundled decoders use 128")
        self.layers = QSpinBox()
        self.layers.setRange(1, 4)
        self.layers.setValue(DEFAULT_LAYERS)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.01, 24 * 60)
        self.minutes.setDecimals(2)
        self.minutes.setValue(DEFAULT_MINUTES)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Time spent training (quality checks not counted); the learning rate decays over it")
        self.check_every = QDoubleSpinBox()
        self.check_every.setRange(0, 120)
        self.check_every.setDecimals(2)
        self.check_every.setValue(DEFAULT_CHECK_MINUTES)
        self.check_every.setSuffix(" min")
        self.check_every.setSpecialValueText("never")
        self.check_every.setToolTip("How often the decoder is tested on training-split queries: the points of the "
                                    "quality curve (the checks also steer pairs to the weakest sites)")
        self.init_base = QCheckBox("Start from the base model's decoder")
        self.init_note = QLabel()
        self.init_note.setStyleSheet(f"color: {muted_css(self)};")
        form = QFormLayout(self)
        form.addRow("&Base model", self.base)
        form.addRow("&Name", self.name)
        form.addRow("Size", _row(QLabel("d_model"), self.d_model, 12, QLabel("layers"), self.layers))
        form.addRow("Time budget", _row(self.minutes, 12, QLabel("quality check every"), self.check_every))
        form.addRow("", _row(self.init_base, self.init_note))
        self.base.currentIndexChanged.connect(self._on_size_changed)
        self.d_model.currentIndexChanged.connect(self._on_size_changed)
        self.layers.valueChanged.connect(self._on_size_changed)
        self.minutes.valueChanged.connect(self._suggest_name)
        self.name.textEdited.connect(self._on_name_edited)
        self.refresh_bases()

    def refresh_bases(self) -> None:
        current = self.base.currentData()
        self.base.blockSignals(True)
        self.base.clear()
        for entry in trainable_bases():
            size = decoder_size(entry)
            dec = f"decoder d_model {size['d_model']}" if size.get("d_model") else "no decoder"
            self.base.addItem(f"{entry.name}  ·  {entry.task}  ·  {entry.source}  ·  {dec}", entry)
        if current is not None:
            self.select_base(str(current.path))
        self.base.blockSignals(False)
        self._on_size_changed()

    def select_base(self, name_or_path: str) -> bool:
        for i in range(self.base.count()):
            entry = self.base.itemData(i)
            if name_or_path in (entry.name, str(entry.path)):
                self.base.setCurrentIndex(i)
                return True
        return False

    def base_entry(self):
        return self.base.currentData()

    def model_name(self) -> str:
        return self.name.text().strip()

    def set_name(self, name: str) -> None:
        """Name the new model as a user typing it would: it no longer follows the size and time."""
        self.name.setText(name)
        self._on_name_edited(name)

    def init_from_base(self) -> bool:
        return self.init_base.isChecked()

    def settings(self) -> dict:
        """The DecoderTrainConfig fields chosen (plus extra_settings)."""
        s = {"minutes": self.minutes.value(), "d_model": self.d_model.currentData(), "n_layers": self.layers.value(),
             "check_every_s": round(self.check_every.value() * 60, 3)}
        if self.init_base.isChecked():  # the base decoder's weights are loaded as they are, heads too
            s["n_heads"] = decoder_size(self.base_entry()).get("n_heads", 4)
        s.update(self.extra_settings)
        return s

    def set_editable(self, editable: bool) -> None:
        """Locked while a run is under way or paused (Resume continues the same run)."""
        self._editable = editable
        for w in (self.base, self.name, self.d_model, self.layers, self.minutes, self.check_every):
            w.setEnabled(editable)
        self.init_base.setEnabled(editable and self._init_allowed)

    def _on_size_changed(self, *_args) -> None:
        self._update_init()
        self._suggest_name()

    def _update_init(self) -> None:
        size = decoder_size(self.base_entry())
        if not size:
            ok, note = False, "(the base model has no decoder)"
        else:
            ok = (size.get("d_model"), size.get("n_layers")) == (self.d_model.currentData(), self.layers.value())
            described = f"d_model {size.get('d_model')}, {size.get('n_layers')} layers"
            note = f"(its decoder: {described})" if ok else f"(only at its decoder's size: {described})"
        self._init_allowed = ok
        self.init_base.setEnabled(ok and self._editable)
        if not ok:
            self.init_base.setChecked(False)
        self.init_note.setText(note)

    def _suggest_name(self, *_args) -> None:
        base = self.base_entry()
        if self._name_auto and base is not None:
            self.name.setText(f"{base.name}-d{self.d_model.currentData()}-{self.minutes.value():g}min")

    def _on_name_edited(self, text: str) -> None:
        self._name_auto = not text.strip()
