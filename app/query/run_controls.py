"""Query options (epsilon, metric, candidates, schedule, seed, where samples are compared, where
candidates come from) and the Run / Cancel / progress bar."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWidgetAction,
)

from app.spill import Spill
from app.style import error_css, muted_css
from engine.query.types import (
    AUTO_SCHEDULE,
    METRICS,
    SAMPLERS,
    SCHEDULES,
    QueryOptions,
    format_schedule,
    parse_schedule,
)

AUTO_TEXT = "Auto"
CUSTOM_TEXT = "Chosen"
# the sampler box's words for QueryOptions.sampler's values (engine/query/types.py SAMPLERS)
SAMPLER_TEXT = {"auto": "auto", "decoder": "decoder", "search": "local search"}
SAMPLER_TIP = ("Where the candidates come from:\n"
               "auto: the decoder where it was trained on the chosen site, else the local search\n"
               "decoder: sample from the trained decoder (prob-diff token colours, the base-rate summary)\n"
               "local search: no training needed; chains of token edits around the query, kept within ε,\n"
               "read by the flip test: what could not be changed without leaving ε")


class OptionsBar(QWidget):
    epsilonChanged = Signal(float)
    optionsChanged = Signal()  # anything that needs a new run
    samplerChanged = Signal(str)  # "auto", "decoder" or "search": whether Run can run may change

    def __init__(self, parent=None):
        super().__init__(parent)
        self.auto_schedule = AUTO_SCHEDULE  # the open model's task's own: the toy tasks' or the text schedule
        self._auto_kind = None  # the task kind whose defaults are set: none yet (the saved options stand)
        self.epsilon = QDoubleSpinBox()
        self.epsilon.setDecimals(3)
        self.epsilon.setRange(0.001, 10.0)
        self.epsilon.setSingleStep(0.01)
        self.epsilon.setValue(0.1)
        self.epsilon.setToolTip("Samples with D ≤ ε are in the ε-preimage. Changing ε re-ranks, no new sampling.")
        self.epsilon.valueChanged.connect(self.epsilonChanged)
        self.metric_box = QComboBox()
        self.metric_box.addItems(list(METRICS))
        self.metric_box.setToolTip("euclidean: ||z - z_q|| / ||z_q||; cosine: 1 - cos(z_q, z)")
        self.candidates = QSpinBox()
        self.candidates.setRange(16, 65536)
        self.candidates.setSingleStep(256)
        self.candidates.setValue(1024)
        self.candidates.setGroupSeparatorShown(True)
        self.candidates.setToolTip("Candidates sampled from the decoder (split evenly over the schedule),\n"
                                   "or inputs the local search re-runs")
        self.schedule_mode = QComboBox()
        self.schedule_mode.addItems([AUTO_TEXT, CUSTOM_TEXT])
        self.schedule_mode.setToolTip(self._auto_tip())
        self.schedule = QLineEdit(format_schedule(AUTO_SCHEDULE))
        self.schedule.setToolTip("temperature:noise pairs, comma separated; noise adds N(0, I) x std(z) x noise")
        self.schedule.setEnabled(False)
        self.schedule.setMinimumWidth(150)
        self.schedule_mode.currentTextChanged.connect(self._on_mode)
        self.schedule.textChanged.connect(self._check_schedule)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed of the sampling: the same seed gives the same samples")
        self.same_label = QCheckBox("same label")
        self.same_label.setToolTip("Compare each sample only at the positions that have the query position's label\n"
                                   "(IOI: END; a text model: the same token) rather than at every position,\n"
                                   "where the closest one counts (the paper's rule)")
        self.same_label.toggled.connect(self.optionsChanged)
        self.sampler_box = QComboBox()
        for value in SAMPLERS:
            self.sampler_box.addItem(SAMPLER_TEXT[value], value)
        self.sampler_box.setToolTip(SAMPLER_TIP)
        self.sampler_box.currentIndexChanged.connect(lambda _: self.samplerChanged.emit(self.sampler()))
        self.sampler_box.currentIndexChanged.connect(lambda _: self._show_search())
        # the local search's own settings (QueryOptions.chains, search_temperature, grammar), shown
        # where the sampler can be the search; the kept tokens are chosen on the token strip
        self.chains = QSpinBox()
        self.chains.setRange(1, 4096)
        self.chains.setValue(QueryOptions.chains)
        self.chains.setToolTip("Local search: chains stepped together, one proposed edit each per step")
        self.search_temperature = QDoubleSpinBox()
        self.search_temperature.setDecimals(2)
        self.search_temperature.setRange(0.0, 10.0)
        self.search_temperature.setSingleStep(0.05)
        self.search_temperature.setValue(QueryOptions.search_temperature)
        self.search_temperature.setToolTip("Local search: Metropolis temperature inside the ε wall, in units of ε\n"
                                           "(0: only moves that come closer are kept)")
        self.grammar = QCheckBox("grammar")
        self.grammar.setChecked(QueryOptions.grammar)
        self.grammar.setToolTip("Local search: drop proposals the task's grammar rejects before re-running them\n"
                                "(counting, addition, IOI prompts; a plain text model has none)")
        for w in (self.chains, self.search_temperature):
            w.valueChanged.connect(self.optionsChanged)
        self.grammar.toggled.connect(self.optionsChanged)
        self.search_button = self._search_menu()
        self.sampler_box.currentIndexChanged.connect(self.optionsChanged)
        for w in (self.metric_box, self.schedule_mode):
            w.currentIndexChanged.connect(self.optionsChanged)
        for w in (self.candidates, self.seed):
            w.valueChanged.connect(self.optionsChanged)
        self.schedule.textChanged.connect(self.optionsChanged)

        # one row; where the window is narrow, the seed and "same label" take a second one (app/spill.py)
        self.tail = QWidget()
        tail = QHBoxLayout(self.tail)
        tail.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        for text, w, into in (("ε", self.epsilon, row), ("metric", self.metric_box, row),
                              ("candidates", self.candidates, row), ("schedule", self.schedule_mode, row),
                              (None, self.schedule, row), ("sampler", self.sampler_box, tail),
                              (None, self.search_button, tail), ("seed", self.seed, tail),
                              (None, self.same_label, tail)):
            if text:
                label = QLabel(text)
                label.setBuddy(w)
                into.addWidget(label)
            into.addWidget(w)
        row.addWidget(self.tail)
        spare = QHBoxLayout()  # empty unless the tail spills into it
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        for r in (row, spare):
            r.addStretch(1)
            lay.addLayout(r)
        self._spill = Spill(self, self.tail, row, spare)
        self._show_search()

    def _search_menu(self) -> QToolButton:
        """A button beside the sampler whose menu holds the search's settings: the bar stays one row
        wide enough for a narrow results pane."""
        form = QWidget()
        lay = QFormLayout(form)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addRow("chains", self.chains)
        lay.addRow("temperature (x ε)", self.search_temperature)
        lay.addRow("", self.grammar)
        menu = QMenu(self)
        action = QWidgetAction(menu)
        action.setDefaultWidget(form)
        menu.addAction(action)
        button = QToolButton()
        button.setText("search…")
        button.setToolTip("The local search's settings: chains, temperature, the grammar filter\n"
                          "(right-click a token of the query to keep it: the search never changes it)")
        button.setPopupMode(QToolButton.InstantPopup)
        button.setMenu(menu)
        return button

    def _show_search(self) -> None:
        """The search's settings show where the sampler can be the search (auto or local search)."""
        self.search_button.setVisible(self.sampler() != "decoder")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._spill.update(event.size().width())

    def _auto_tip(self) -> str:
        return f"Auto: temperature:noise {format_schedule(self.auto_schedule)} (the paper's for this model)"

    def set_task_defaults(self, task, reset: bool) -> None:
        """Auto becomes the task's schedule (text models: 0.5:0, 1:0, 1:0.1); with reset, and the
        model of another kind than before, metric and candidates become the task's too (1 - cosine
        and 768 for text, as the paper's GPT-2 queries)."""
        changed = task.query_schedule != self._auto_kind
        self._auto_kind, self.auto_schedule = task.query_schedule, SCHEDULES[task.query_schedule]
        self.schedule_mode.setToolTip(self._auto_tip())
        if self.schedule_mode.currentText() == AUTO_TEXT:
            self.schedule.setText(format_schedule(self.auto_schedule))
        if reset and changed:
            self.metric_box.setCurrentText(task.query_metric)
            self.candidates.setValue(task.query_candidates)

    def _on_mode(self, mode: str) -> None:
        self.schedule.setEnabled(mode == CUSTOM_TEXT)
        if mode == AUTO_TEXT:
            self.schedule.setText(format_schedule(self.auto_schedule))

    def _check_schedule(self) -> None:
        error = self.schedule_error()
        self.schedule.setStyleSheet(f"border: 1px solid {error_css(self)};" if error else "")
        self.schedule.setToolTip(error or "temperature:noise pairs, comma separated")

    def schedule_error(self) -> str:
        if self.schedule_mode.currentText() == AUTO_TEXT:
            return ""
        try:
            parse_schedule(self.schedule.text())
        except ValueError as e:
            return str(e)
        return ""

    def options(self, colour: bool = False, keep: tuple[int, ...] = ()) -> QueryOptions:
        """The chosen options; ValueError when the chosen schedule cannot be read. colour: the
        query computes every sample's prob-diff colouring itself; the window's queries do not
        (the rows on screen are coloured afterwards, on demand: app/results/colouring.py). keep:
        the query positions the local search never changes (kept on the token strip)."""
        auto = self.schedule_mode.currentText() == AUTO_TEXT
        schedule = self.auto_schedule if auto else parse_schedule(self.schedule.text())
        return QueryOptions(candidates=self.candidates.value(), schedule=schedule, metric=self.metric_box.currentText(),
                            epsilon=self.epsilon.value(), seed=self.seed.value(), colour=colour,
                            same_label=self.same_label.isChecked(), sampler=self.sampler(), chains=self.chains.value(),
                            search_temperature=self.search_temperature.value(), grammar=self.grammar.isChecked(),
                            keep=tuple(keep))

    def search_settings(self) -> tuple[int, float, bool]:
        """(chains, temperature, grammar filter) for the settings file."""
        return self.chains.value(), self.search_temperature.value(), self.grammar.isChecked()

    def apply_search(self, chains: int, temperature: float, grammar: bool) -> None:
        self.chains.setValue(chains)
        self.search_temperature.setValue(temperature)
        self.grammar.setChecked(grammar)

    def sampler(self) -> str:
        """The chosen sampler: "auto", "decoder" or "search" (QueryOptions.sampler)."""
        return self.sampler_box.currentData() or "auto"

    def schedule_list(self) -> list:
        """For settings: [] for Auto, else [[t, noise], ...]."""
        if self.schedule_mode.currentText() == AUTO_TEXT or self.schedule_error():
            return []
        return [list(e) for e in parse_schedule(self.schedule.text())]

    def apply(self, epsilon: float, metric: str, candidates: int, schedule: list, seed: int,
              same_label: bool = False, sampler: str = "auto") -> None:
        self.epsilon.setValue(epsilon)
        self.same_label.setChecked(same_label)
        self.sampler_box.setCurrentIndex(max(self.sampler_box.findData(sampler), 0))  # unknown: auto
        if metric in METRICS:
            self.metric_box.setCurrentText(metric)
        self.candidates.setValue(candidates)
        self.schedule_mode.setCurrentText(CUSTOM_TEXT if schedule else AUTO_TEXT)
        if schedule:
            self.schedule.setText(format_schedule(schedule))
        self.seed.setValue(seed)


class RunBar(QWidget):
    RUN_TIP = "Sample inputs whose activation at the chosen site and position comes close to the query's"
    runClicked = Signal()
    cancelClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.run_button = QPushButton("Run  (Ctrl+Enter)")
        self.run_button.setDefault(True)
        self.run_button.setToolTip(self.RUN_TIP)
        self.run_button.clicked.connect(self.runClicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("Stop the running query and keep what was found so far (Esc)")
        self.cancel_button.clicked.connect(self.cancelClicked)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.progress.setTextVisible(True)
        self.progress.setMinimumWidth(260)
        self.eta = QLabel()
        self.eta.setStyleSheet(f"color: {muted_css(self)};")
        self.eta.setMinimumWidth(120)
        self.target = QLabel()
        self.target.setTextFormat(Qt.RichText)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.target, 1)
        lay.addWidget(self.run_button)
        lay.addWidget(self.cancel_button)
        lay.addWidget(self.progress)
        lay.addWidget(self.eta)

    def set_running(self, running: bool, waiting_text: str = "") -> None:
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, 0 if waiting_text else 1)  # busy indicator while waiting
            self.progress.setValue(0)
            self.progress.setFormat(waiting_text)
            self.eta.setText("")

    def set_progress(self, done: int, total: int, elapsed: float) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done:,} / {total:,} candidates")
        if 0 < done < total and elapsed > 0:
            self.eta.setText(f"ETA {elapsed / done * (total - done):.1f} s")
        else:
            self.eta.setText(f"{elapsed:.1f} s" if done else "")

    def set_finished(self, text: str) -> None:
        """The run is over (done, cancelled or failed): `text` says how and how long; the ETA and
        the running clock beside it go, so no second, different figure stays on screen."""
        self.cancel_button.setEnabled(False)
        self.eta.setText("")
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress.setFormat(text)
