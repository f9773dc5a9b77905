"""The main window: model and query on top, the diagram and the results side by side.

It only shows and asks; every piece of engine work goes through the one EngineClient (the engine
runs in its own process, docs/design.md §9). What the window works on is the session
(app/session.py); running and showing results is app/query/runner.py; the remembered state is
app/window_state.py. This is where the rooms meet: each method wires one room's signal to another's.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import window_state
from app.diagram.view import DiagramPanel
from app.explain.map_view import MapController
from app.flow.node_pane import NodeDetailPane
from app.flow.view import FlowView
from app.node_dock import make_node_dock, open_beside
from app.patching.controller import PatchController
from app.patching.panel import PatchPanel
from app.query import run_gate
from app.query.editor import QueryEditor
from app.query.model_choice import ModelChoice
from app.query.model_picker import ModelPicker
from app.query.run_controls import OptionsBar, RunBar
from app.query.runner import Runner
from app.query.token_map import TokenMap
from app.results import export as export_actions
from app.results.colouring import ColourController
from app.results.compare import CompareView
from app.results.history import HistoryEntry, HistoryPanel
from app.results.view import ResultsView
from app.session import Session
from app.settings import AppSettings, SettingsStore
from app.style import error_css, muted_css
from app.workers.engine_client import EngineClient
from app.workers.query_request import default_position

APP_TITLE = "InversionView Studio"
SAVE_DELAY_MS = 1500


class MainWindow(QMainWindow):
    resultShown = Signal(object)  # the QueryResult now on screen (partial or final)

    def __init__(self, store: SettingsStore | None = None, backend=None, save_settings: bool = True,
                 engine_command: list[str] | None = None):
        """backend: a fake engine run in a thread (tests); None: the engine process, started with
        engine_command (default: this interpreter, app/workers/engine_link.py)."""
        super().__init__()
        self.store = store or SettingsStore()
        self.settings: AppSettings = self.store.load()
        self._save_enabled = save_settings
        self.engine = EngineClient(backend, self, command=engine_command)
        self.train_dialog = None  # made on first use (File > Train decoder…)
        self.session = Session()  # the model, the target, the result shown (app/session.py)
        self.setWindowTitle(APP_TITLE)
        self.resize(1480, 920)
        self._build()
        from app.menus import build_menus

        build_menus(self)
        self._connect()
        self.picker.remember(self.settings.folders)
        window_state.restore(self)

    # ---- construction -------------------------------------------------------------------
    def _build(self) -> None:
        self.picker = ModelPicker()
        self.editor = QueryEditor()
        self.run_bar = RunBar()
        self.options_bar = OptionsBar()
        self.diagram_panel = DiagramPanel()
        self.diagram_panel.setMinimumWidth(380)
        self.diagram = self.diagram_panel.view
        self.results = ResultsView()
        self.compare = CompareView()
        self.token_map = TokenMap(self.results, self.editor, self)  # a local search's verdicts under the query
        results_page = QWidget()
        rl = QVBoxLayout(results_page)
        rl.setContentsMargins(4, 4, 4, 4)
        rl.addWidget(self.options_bar)
        rl.addWidget(self.results, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(results_page, "Results")
        self.tabs.addTab(self.compare, "Compare")
        from app.window_fit import HistoryHeight, follow_compare

        follow_compare(self)  # the diagram steps back while Compare is open, and shows every position
        self.split = QSplitter(Qt.Horizontal)
        self.split.addWidget(self.diagram_panel)
        self.split.addWidget(self.tabs)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([700, 780])
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(8, 6, 8, 4)
        lay.addWidget(self.picker)
        lay.addWidget(self.editor)
        lay.addWidget(self.run_bar)
        lay.addWidget(self.split, 1)
        self.setCentralWidget(central)
        self.history = HistoryPanel()
        self.history_dock = QDockWidget("History", self)
        self.history_dock.setObjectName("historyDock")
        self.history_dock.setWidget(self.history)
        self.addDockWidget(Qt.BottomDockWidgetArea, self.history_dock)
        self.history_height = HistoryHeight(self, self.history_dock)  # shorter on a short window
        self.node_pane = NodeDetailPane()
        self.node_dock = make_node_dock(self, self.node_pane)  # docked beside the results, never over them
        self.node_dock.visibilityChanged.connect(self._on_node_dock_visible)
        self.flow = FlowView(self.engine, self.diagram, self.diagram_panel.flow_controls, self.node_pane, self)
        legend = self.diagram_panel.flow_legend  # the P(target) key means nothing under a map or a causal check
        self.flow.heldChanged.connect(lambda held: legend.setVisible(not held))
        self.map = MapController(self.engine, self.diagram, self.flow, self.diagram_panel.map_bar, self)
        self.models = ModelChoice(self)  # choosing, loading, failures, restarts (app/query/model_choice.py)
        self.runner = Runner(self)  # Run, partial results, the history, epsilon (app/query/runner.py)
        self.map.ask = self.runner._map_wanted
        self.map.resultChosen.connect(self.runner._show_mapped)
        self.patch_panel = PatchPanel()  # the causal check: a tab beside Results and Compare
        self.tabs.addTab(self.patch_panel, "Causal check")
        self.patch = PatchController(self, self.patch_panel)
        self.colouring = ColourController(self)  # prob-diff colours on demand, the rows on screen first
        self.model_state = QLabel()
        self.statusBar().addPermanentWidget(self.model_state)
        self.save_timer = QTimer(self)  # settings are written a moment after a run, not during it
        self.save_timer.setSingleShot(True)
        self.save_timer.setInterval(SAVE_DELAY_MS)
        self.save_timer.timeout.connect(self.save_settings)

    def _connect(self) -> None:
        self.diagram.nodeSelected.connect(self.set_target)  # the arrow keys choose a site, no pane
        self.editor.queryChanged.connect(self._on_query_changed)
        self.editor.positionClicked.connect(self.set_position)
        self.diagram.nodeClicked.connect(self._on_node_clicked)
        self.diagram.positionClicked.connect(self.set_position)
        self.run_bar.runClicked.connect(self.run_query)
        self.run_bar.cancelClicked.connect(self.cancel_query)
        self.options_bar.epsilonChanged.connect(self.runner._on_epsilon)
        self.options_bar.optionsChanged.connect(self.runner._mark_if_stale)
        self.options_bar.samplerChanged.connect(lambda _: (self.update_target(), self.update_run_enabled()))
        self.resultShown.connect(lambda _: self.runner._mark_if_stale())
        self.results.epsilonDragged.connect(self.options_bar.epsilon.setValue)
        self.history.entryActivated.connect(self.reopen)
        self.history.pinRequested.connect(self.pin)
        e = self.engine
        e.runProgress.connect(self.run_bar.set_progress)

    # ---- model (app/query/model_choice.py) ------------------------------------------------
    def start(self):
        """Choose the last used model (the bundled 'counting' by default); the engine loads it.
        Returns the ModelEntry chosen, or None when there is no model at all."""
        return self.models.start()

    def choose_model(self, entry, restoring: bool = False) -> None:
        self.models.choose_model(entry, restoring)

    # ---- model --------------------------------------------------------------------------
    # ---- query, site and position -----------------------------------------------------
    def _on_query_changed(self) -> None:
        tokens = self.editor.tokens()
        self.update_run_enabled()
        self.flow.set_query(self.editor.text() if tokens is not None else None)
        if tokens is None:
            self.run_bar.target.setText(f"<span style='color:{error_css()}'>Fix the query to run it.</span>")
            return
        labels = self.editor.labels()
        self.diagram.set_tokens(self.session.task.vocab.token_strings(tokens), labels)
        if self.session.position_label and labels.count(self.session.position_label) == 1:
            self.session.position = labels.index(self.session.position_label)
        elif not 0 <= self.session.position < len(tokens):
            self.session.position = default_position(self.session.entry.task, labels)
        self.session.position_label = labels[self.session.position]
        self.update_target()

    def _on_node_clicked(self, site: str, position: int) -> None:
        """Select the site and position to invert, and read the node in the flow graph's pane."""
        self.set_target(site, position)  # the pane follows the selection while it is open
        if self.node_dock.isHidden():
            open_beside(self)
            if self.node_pane.key != (site, position):
                self.update_target()
        self.node_dock.raise_()

    def cannot_run(self) -> str:
        """Why Run would fail now ('' when it can run): the tooltip of a disabled Run says so
        before the click, rather than an error after it."""
        s = self.session
        return run_gate.cannot_run(s.loaded, self.engine.loading, self.options_bar.sampler(), s.site,
                                   self._untrained_site())

    def _untrained_site(self) -> bool:
        """The chosen site is one the loaded model's decoder does not know (unknown while loading)."""
        return bool(self.session.loaded is not None and self.session.loaded.trained_sites and
                    not self.diagram.is_trained(self.session.site))

    def update_run_enabled(self) -> None:
        """Run needs a valid query, a model that is loaded or loading (a run waits for the load), and
        with the sampler "decoder" a decoder trained on the site (auto: the local search runs there)."""
        why = self.cannot_run()
        self.run_bar.run_button.setEnabled(self.editor.tokens() is not None and not why)
        self.run_bar.run_button.setToolTip(why or self.run_bar.RUN_TIP)

    def _on_node_dock_visible(self, visible: bool) -> None:
        if visible:  # opened from the View menu: show the selected node
            self.update_target()

    def set_position(self, position: int) -> None:
        self.set_target(self.session.site, position)

    def set_target(self, site: str, position: int) -> None:
        self.session.site, self.session.position = site, position
        labels = self.editor.labels()
        self.session.position_label = labels[position] if 0 <= position < len(labels) else ""
        self.update_target()
        self.update_run_enabled()  # a site the decoder does not know cannot run

    def update_target(self) -> None:
        self.diagram.set_selection(self.session.site, self.session.position)
        self.flow.set_route_position(self.session.position if self.session.position >= 0 else None)
        self.editor.set_selected_position(self.session.position)
        labels = self.editor.labels()
        if not self.node_dock.isHidden() and 0 <= self.session.position < len(labels):
            self.flow.show_detail(self.session.site, self.session.position)
        if self.editor.tokens() is None or not 0 <= self.session.position < len(labels):
            return
        # said only once the model has loaded: while it loads, the diagram marks the paper's sites,
        # not the decoder's (and a model without a decoder says so in the Model box)
        s = self.session
        note, bad = run_gate.target_note(s.loaded, self._untrained_site(), self.options_bar.sampler(), s.site)
        note = note and f" <span style='color:{error_css() if bad else muted_css()}'>· {escape(note)}</span>"
        self.run_bar.target.setText(f"Invert <b>{self.session.site}</b> at position <b>{self.session.position}</b> "
                                    f"'{labels[self.session.position]}'{note}")

    def target(self) -> tuple[str, int]:
        return self.session.site, self.session.position

    # ---- running --------------------------------------------------------------------------
    # ---- epsilon, history and compare -----------------------------------------------------
    def run_query(self) -> int | None:
        """Run the query at the chosen site and position; the request id, or None (and why, in the status bar)."""
        return self.runner.run_query()

    def cancel_query(self) -> None:
        self.runner.cancel_query()

    def reopen(self, entry: HistoryEntry) -> None:
        """Show a past run at once and put its model, query, site and position back."""
        self.runner.reopen(entry)

    def pin(self, entry: HistoryEntry, side: int) -> None:
        self.runner.pin(entry, side)

    def show_outside_result(self, result, model_key: str) -> None:
        """A result that no Run made here (a mapped node's, an imported file's), shown and kept."""
        self.runner.show_outside_result(result, model_key)

    # ---- export (app/results/export.py): each asks for a path when none is given; the path written, or None
    def export_csv(self, path: str | None = None):
        return export_actions.export_samples_csv(self, path)

    def export_paper_json(self, path: str | None = None):
        """None also while the file waits for the samples' colours: it is written once they are."""
        return export_actions.export_paper_json(self, path)

    def export_notebook(self, path: str | None = None):
        return export_actions.export_notebook(self, path)

    def import_paper_json(self, path: str | None = None):
        return export_actions.import_paper_json(self, path)

    def export_png(self, which: str, path: str | None = None):
        """'results' (what the tab shows) or 'diagram' (the whole model)."""
        return export_actions.export_png(self, which, path)

    def export_flow(self, which: str, path: str | None = None):
        """'json' (the edges on screen), 'neuronpedia' (pruned by influence) or 'png'."""
        return export_actions.export_flow(self, which, path)

    # ---- the window's state (app/window_state.py) and training -----------------------------
    def _fit_to_screen(self, room=None) -> None:
        window_state.fit_to_screen(self, room)

    def save_settings(self) -> None:
        if self._save_enabled:
            window_state.save(self)

    def open_train_dialog(self):
        """File > Train decoder…: one non-modal dialog, kept (with its curves) while the window lives."""
        from app.training.dialog import open_for

        return open_for(self)

    # ---- settings and closing -----------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.save_timer.stop()
        self.save_settings()
        self.runner._partial_timer.stop()
        self.flow.stop()
        if self.train_dialog is not None:  # a run stops at its next step, its checkpoint saved
            self.train_dialog.shutdown()
        self.engine.shutdown()  # the engine's pipe closes and it exits: nothing here waits for torch
        event.accept()
