"""The main window: model and query on top, the diagram and the results side by side.

It only shows and asks; every piece of engine work goes through the one EngineClient, so the
GUI thread never waits for torch. Partial results stream in and are painted at most every
REPAINT_MS (the first chunk at once, so first results appear quickly).

Why one file of ~560 lines: this is where the rooms meet (query, diagram, flow, results,
training), and each method is a few lines wiring one room's signal to another's slot. Read top
to bottom it is the app's whole event flow; the drawing and the engine work live in the rooms.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.diagram.view import DiagramPanel
from app.explain.map_view import MapController
from app.flow.node_pane import NodeDetailPane
from app.flow.view import FlowView
from app.launch import HEADLESS_PLATFORMS
from app.messages import show_message
from app.node_dock import make_node_dock, open_beside, redock
from app.patching.controller import PatchController
from app.patching.panel import PatchPanel
from app.query import run_gate
from app.query.editor import QueryEditor
from app.query.model_picker import ModelPicker
from app.query.run_controls import OptionsBar, RunBar
from app.query.token_map import TokenMap
from app.results import export as export_actions
from app.results.colouring import ColourController
from app.results.compare import CompareView
from app.results.history import HistoryEntry, HistoryPanel
from app.results.view import ResultsView
from app.settings import MAX_FOLDERS, AppSettings, SettingsStore
from app.style import error_css, muted_css
from app.workers.engine_client import EngineClient
from app.workers.query_request import QueryRequest, default_position, default_site
from engine.errors import USER_ERRORS
from engine.probed.sites import all_sites, paper_sites
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import TEXT_TASK

APP_TITLE = "InversionView Studio"
REPAINT_MS = 100
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
        self.training_stuck = False  # the same for the decoder training thread
        self.train_dialog = None  # made on first use (File > Train decoder…)
        self._entry = None  # ModelEntry chosen
        self.last_request = None  # (QueryRequest, ModelEntry) of the last query run
        self._loaded = None  # LoadedModel once the engine has it
        self._task = None  # the chosen model's task (a text model's carries its tokenizer)
        self._restoring = False  # the model being loaded is the last session's (a failure falls back to the default)
        self._site = ""
        self._position = -1
        self._position_label = ""  # followed when the query changes: ':' stays ':' as letters are typed
        self._shown: HistoryEntry | None = None
        self._pending = None
        self._first_shown = False
        self.setWindowTitle(APP_TITLE)
        self.resize(1480, 920)
        self._build()
        from app.menus import build_menus

        build_menus(self)
        self._connect()
        self.picker.remember(self.settings.folders)
        self._restore_options()

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
        self.tabs.currentChanged.connect(self._on_tab)
        from app.window_fit import HistoryHeight, follow_compare

        follow_compare(self)  # after _on_tab: the narrowed diagram shows every position
        self._sizes_before_compare: list[int] | None = None
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
        self.map.ask = self._map_wanted
        self.map.resultChosen.connect(self._show_mapped)
        self.patch_panel = PatchPanel()  # the causal check: a tab beside Results and Compare
        self.tabs.addTab(self.patch_panel, "Causal check")
        self.patch = PatchController(self, self.patch_panel)
        self.patch.context = lambda: (self._entry, self._task)
        self.colouring = ColourController(self)  # prob-diff colours on demand, the rows on screen first
        self.colouring.model_key = lambda: (self._shown.model_key if self._shown
                                            else str(self._entry.path) if self._entry else "")
        self.model_state = QLabel()
        self.statusBar().addPermanentWidget(self.model_state)
        self._partial_timer = QTimer(self)
        self._partial_timer.setSingleShot(True)
        self._partial_timer.timeout.connect(self._paint_pending)
        self._save_timer = QTimer(self)  # settings are written a moment after a run, not during it
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_settings)

    def _connect(self) -> None:
        self.picker.modelChosen.connect(self.choose_model)
        self.diagram.nodeSelected.connect(self.set_target)  # the arrow keys choose a site, no pane
        self.editor.queryChanged.connect(self._on_query_changed)
        self.editor.positionClicked.connect(self.set_position)
        self.diagram.nodeClicked.connect(self._on_node_clicked)
        self.diagram.positionClicked.connect(self.set_position)
        self.run_bar.runClicked.connect(self.run_query)
        self.run_bar.cancelClicked.connect(self.cancel_query)
        self.options_bar.epsilonChanged.connect(self._on_epsilon)
        self.options_bar.optionsChanged.connect(self._mark_if_stale)
        self.options_bar.samplerChanged.connect(lambda _: (self._update_target(), self._update_run_enabled()))
        self.resultShown.connect(lambda _: self._mark_if_stale())
        self.results.epsilonDragged.connect(self.options_bar.epsilon.setValue)
        self.history.entryActivated.connect(self.reopen)
        self.history.pinRequested.connect(self.pin)
        e = self.engine
        e.modelLoading.connect(self._on_model_loading)
        e.modelLoaded.connect(self._on_model_loaded)
        e.modelFailed.connect(self._on_model_failed)
        e.runProgress.connect(self.run_bar.set_progress)
        e.runPartial.connect(self._on_partial)
        e.runFinished.connect(self._on_finished)
        e.runFailed.connect(self._on_run_failed)
        e.runCancelled.connect(self._on_run_cancelled)
        e.engineLost.connect(self._on_engine_lost)

    def _restore_options(self) -> None:
        s = self.settings
        self.options_bar.apply(s.epsilon, s.metric, s.candidates, s.schedule, s.seed, s.same_label, s.sampler)
        for text, setter in ((s.geometry, self.restoreGeometry), (s.window_state, self.restoreState),
                             (s.splitter_state, self.split.restoreState)):
            if text:
                setter(QByteArray.fromBase64(text.encode("ascii")))
        redock(self.node_dock)
        self._fit_to_screen()
        if self.store.note:
            self.statusBar().showMessage(self.store.note, 15000)

    def _fit_to_screen(self, room=None) -> None:
        """A geometry saved on a bigger screen (or at another scale factor) is shrunk (down to the
        window's minimum size) and moved into this screen's available area (or `room`)."""
        if room is None:
            if QGuiApplication.platformName() in HEADLESS_PLATFORMS:
                return  # an offscreen "screen" is a made-up size: keep the designed one (smoke screenshots)
            screen = self.screen() or QGuiApplication.primaryScreen()
            if screen is None:
                return
            room = screen.availableGeometry()
        from app.window_fit import fit_minimum, frame_extra

        fit_minimum(self, room)  # a minimum size larger than the screen (QT_SCALE_FACTOR=2) shrinks to fit it
        extra = frame_extra(self)  # the frame counts too
        width = min(self.width(), room.width() - extra.width())
        height = min(self.height(), room.height() - extra.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        # inside the screen where it fits; where even the minimum size does not, the title bar
        # (top left) stays on screen so the window can still be moved and resized
        x = max(room.left(), min(frame.x(), room.right() - frame.width() + 1))
        y = max(room.top(), min(frame.y(), room.bottom() - frame.height() + 1))
        if (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    def start(self):
        """Choose the last used model (the bundled 'counting' by default); the engine loads it.

        Returns the ModelEntry chosen, or None when there is no model at all.
        """
        saved = self.picker.find(self.settings.model)
        entry = saved or self.picker.find(DEFAULT_MODEL)
        if entry is None and self.picker.entries():
            entry = self.picker.entries()[0]
        if entry is None:
            self.picker.set_state("No models found: train one (python main.py --help) or open a model folder.", True)
            return None
        # the saved site, position, query and query options belong to the saved model: another one
        # (the saved folder has gone) starts from its own task's defaults
        self.choose_model(entry, restoring=saved is not None)
        return entry

    # ---- model --------------------------------------------------------------------------
    def choose_model(self, entry, restoring: bool = False) -> None:
        self._restoring = restoring
        try:
            task = entry.load_task()  # a text model's tokenizer, read from its folder
        except USER_ERRORS as e:
            self.picker.select(str(entry.path))
            self._entry, self._loaded = entry, None
            self._on_model_failed(f"Could not load model {entry.name!r}: {e}")
            return
        if self._entry is not None and (self._entry.task != entry.task or task.name == TEXT_TASK):
            self._position, self._position_label = -1, ""  # another task or tokenizer: its own default position
        self._entry, self._loaded, self._task = entry, None, task
        self.picker.select(str(entry.path))
        self.flow.set_model(None)  # computed once the engine has loaded it; the vocabulary comes then too
        cfg = entry.probed
        marked = [s.short for s in paper_sites(cfg)] if task.paper_sites else []  # none for a text model
        self.diagram.set_model(cfg.n_layers, cfg.n_heads, marked, parallel=cfg.parallel_attn_mlp)
        shorts = {s.short for s in all_sites(cfg)}
        if restoring and self.settings.site in shorts:
            self._site = self.settings.site
        elif self._site not in shorts:
            self._site = default_site(entry.task)
        if restoring:
            self._position = self.settings.position
        self.editor.set_task(task, self.settings.query if restoring and self.settings.query else None)
        self.options_bar.set_task_defaults(task, reset=not restoring)
        self.engine.load_model(entry)
        self._update_run_enabled()
        self._mark_if_stale()  # the shown run is another model's now
        self.map.forget_message()  # e.g. "Cannot map: … no decoder" was about the model before

    def _on_model_loading(self, name: str) -> None:
        self.picker.set_state(f"Loading {name}… (first load imports torch: a few seconds)")
        self.model_state.setText(f"{name}: loading…")

    def _on_model_loaded(self, info) -> None:
        if self._entry is None or info.key != str(self._entry.path):
            return
        self._loaded = info
        self.picker.set_state(f"{info.name} ready ({info.seconds:.1f} s){run_gate.model_note(info)}")
        self.model_state.setText(f"{info.name}: ready")
        if info.trained_sites:
            self.diagram.set_trained_sites(info.trained_sites)
            if self._site not in info.trained_sites and not self._restoring:
                # another model's decoder knows other sites: move to one this one was trained on
                old, default = self._site, default_site(self._entry.task)
                self._site = default if default in info.trained_sites else info.trained_sites[0]
                self.statusBar().showMessage(f"{info.name}'s decoder was not trained on {old}; "
                                             f"chose {self._site}", 15000)
        self._update_target()
        self._update_run_enabled()
        self.map.forget_message()  # "Cannot map: … no decoder" no longer holds once it has one
        # the target picker's vocabulary: the engine thread made the display table while loading
        # (50k tokens take 0.1 s), so this only hands it over
        self.flow.set_model(info.key, self._task.vocab.strings())

    def _on_engine_lost(self, line: str) -> None:
        """The engine process died (killed, crashed, out of memory): the query, site, results and history
        stay on screen; the client has started another engine and is reloading the model."""
        self._loaded = None
        self.picker.set_state(line, error=True)
        self.model_state.setText("engine restarting…")
        self.statusBar().showMessage(line, 30000)
        self._update_run_enabled()

    def _on_model_failed(self, message: str) -> None:
        self.picker.set_state(message, error=True)
        self.model_state.setText("model not loaded")
        self.statusBar().showMessage(message, 20000)
        self._loaded = None
        self._update_run_enabled()
        fallback = self.picker.find(DEFAULT_MODEL)
        if self._restoring and fallback is not None and self._entry is not None and self._entry.path != fallback.path:
            # the last session's model no longer loads: start on the bundled default, and say why
            broken = self._entry.name
            self.choose_model(fallback)
            self.statusBar().showMessage(f"{broken} could not be loaded ({message}); opened {fallback.name} instead",
                                         30000)

    # ---- query, site and position -----------------------------------------------------
    def _on_query_changed(self) -> None:
        tokens = self.editor.tokens()
        self._update_run_enabled()
        self.flow.set_query(self.editor.text() if tokens is not None else None)
        if tokens is None:
            self.run_bar.target.setText(f"<span style='color:{error_css()}'>Fix the query to run it.</span>")
            return
        labels = self.editor.labels()
        self.diagram.set_tokens(self._task.vocab.token_strings(tokens), labels)
        if self._position_label and labels.count(self._position_label) == 1:
            self._position = labels.index(self._position_label)
        elif not 0 <= self._position < len(tokens):
            self._position = default_position(self._entry.task, labels)
        self._position_label = labels[self._position]
        self._update_target()

    def _on_node_clicked(self, site: str, position: int) -> None:
        """Select the site and position to invert, and read the node in the flow graph's pane."""
        self.set_target(site, position)  # the pane follows the selection while it is open
        if self.node_dock.isHidden():
            open_beside(self)
            if self.node_pane.key != (site, position):
                self._update_target()
        self.node_dock.raise_()

    def _cannot_run(self) -> str:
        """Why Run would fail now ('' when it can run): the tooltip of a disabled Run says so
        before the click, rather than an error after it."""
        return run_gate.cannot_run(self._loaded, self.engine.loading, self.options_bar.sampler(), self._site,
                                   self._untrained_site())

    def _untrained_site(self) -> bool:
        """The chosen site is one the loaded model's decoder does not know (unknown while loading)."""
        return bool(self._loaded is not None and self._loaded.trained_sites and
                    not self.diagram.is_trained(self._site))

    def _update_run_enabled(self) -> None:
        """Run needs a valid query, a model that is loaded or loading (a run waits for the load), and
        with the sampler "decoder" a decoder trained on the site (auto: the local search runs there)."""
        why = self._cannot_run()
        self.run_bar.run_button.setEnabled(self.editor.tokens() is not None and not why)
        self.run_bar.run_button.setToolTip(why or self.run_bar.RUN_TIP)

    def _on_node_dock_visible(self, visible: bool) -> None:
        if visible:  # opened from the View menu: show the selected node
            self._update_target()

    def set_position(self, position: int) -> None:
        self.set_target(self._site, position)

    def set_target(self, site: str, position: int) -> None:
        self._site, self._position = site, position
        labels = self.editor.labels()
        self._position_label = labels[position] if 0 <= position < len(labels) else ""
        self._update_target()
        self._update_run_enabled()  # a site the decoder does not know cannot run

    def _update_target(self) -> None:
        self.diagram.set_selection(self._site, self._position)
        self.flow.set_route_position(self._position if self._position >= 0 else None)
        self.editor.set_selected_position(self._position)
        labels = self.editor.labels()
        if not self.node_dock.isHidden() and 0 <= self._position < len(labels):
            self.flow.show_detail(self._site, self._position)
        if self.editor.tokens() is None or not 0 <= self._position < len(labels):
            return
        # said only once the model has loaded: while it loads, the diagram marks the paper's sites,
        # not the decoder's (and a model without a decoder says so in the Model box)
        note, bad = run_gate.target_note(self._loaded, self._untrained_site(), self.options_bar.sampler(), self._site)
        note = note and f" <span style='color:{error_css() if bad else muted_css()}'>· {escape(note)}</span>"
        self.run_bar.target.setText(f"Invert <b>{self._site}</b> at position <b>{self._position}</b> "
                                    f"'{labels[self._position]}'{note}")

    def target(self) -> tuple[str, int]:
        return self._site, self._position

    # ---- running --------------------------------------------------------------------------
    def run_query(self) -> int | None:
        if self._entry is None:
            self.statusBar().showMessage("Choose a model first.", 8000)
            return None
        if self.editor.tokens() is None:
            self.statusBar().showMessage(f"The query is not valid: {self.editor.error()}", 8000)
            return None
        if self._cannot_run():  # Ctrl+Enter and the menu too, not only the button
            self.statusBar().showMessage(self._cannot_run(), 8000)
            return None
        try:
            options = self.options_bar.options(colour=not self.colouring.available())
        except ValueError as e:
            self.statusBar().showMessage(f"Schedule: {e}", 8000)
            return None
        self.colouring.reset()  # the engine thread is the new query's
        request = QueryRequest(model_key=str(self._entry.path), text=self.editor.text(), site=self._site,
                               position=self._position, options=options)
        self.last_request = (request, self._entry)  # what File > Export as notebook re-runs
        self._partial_timer.stop()
        self._pending, self._first_shown = None, False
        self._shown = None
        self.tabs.setCurrentIndex(0)
        self.results.clear()
        self.results.summary.setText("Sampling…")
        waiting = "waiting for the model to load…" if self.engine.loading else ""
        self.run_bar.set_running(True, waiting)
        return self.engine.run(request)

    def _map_wanted(self):
        """What "Map this input" maps: (model key, text, layers, options), or why it cannot."""
        why = run_gate.cannot_map(self._loaded if self._entry is not None else None, self.options_bar.sampler())
        if why:
            return why
        if self.editor.tokens() is None:
            return f"The input is not valid: {self.editor.error()}"
        try:
            o = self.options_bar.options()
        except ValueError as e:
            return f"Schedule: {e}"
        options = {"epsilon": o.epsilon, "metric": o.metric, "seed": o.seed, "schedule": o.schedule,
                   "same_label": o.same_label, "sampler": o.sampler}
        return str(self._entry.path), self.editor.text(), self._entry.probed.n_layers, options

    def _show_mapped(self, result) -> None:
        """A mapped node's full result, opened from the map like a finished run."""
        self.show_outside_result(result, str(self._entry.path) if self._entry else "")

    def show_outside_result(self, result, model_key: str) -> None:
        """A result that no Run made here (a mapped node's, an imported file's), shown and kept in
        the history like a finished run."""
        self.tabs.setCurrentIndex(0)
        entry = HistoryEntry(result, model_key=model_key, query_text=self.editor.text())
        self.history.add(entry)
        self._show_entry(entry)

    def cancel_query(self) -> None:
        if self.engine.running:
            self.engine.cancel()
            self.run_bar.set_finished("cancelling…")

    def _on_partial(self, result) -> None:
        self._pending = result
        if not self._first_shown:
            self._paint_pending()
        elif not self._partial_timer.isActive():
            self._partial_timer.start(REPAINT_MS)

    def _paint_pending(self) -> None:
        if self._pending is None:
            return
        result, self._pending = self._pending, None
        self._first_shown = True
        self.results.show_result(result, self.options_bar.epsilon.value(), status="running")
        self.resultShown.emit(result)

    def _on_finished(self, result) -> None:
        self._partial_timer.stop()
        self._pending = None
        entry = HistoryEntry(result, model_key=str(self._entry.path) if self._entry else "",
                             query_text=self.editor.text())
        self.history.add(entry)
        self._show_entry(entry, status="cancelled")
        if result.complete:
            self.run_bar.set_finished(f"done: {result.candidates:,} candidates in {result.seconds:.1f} s")
        else:
            self.run_bar.set_finished(f"cancelled at {result.candidates_done:,} / {result.candidates:,}")
        self._save_timer.start()

    def _on_run_cancelled(self) -> None:
        self._partial_timer.stop()
        self.run_bar.set_finished("cancelled before it started")
        self.results.summary.setText("Cancelled before the engine started it.")

    def _on_run_failed(self, message: str) -> None:
        self._partial_timer.stop()
        self.run_bar.set_finished("failed")
        self.results.summary.setText(f"<span style='color:{error_css()}'>{escape(message)}</span>")
        self.statusBar().showMessage(message, 20000)

    def _mark_if_stale(self) -> None:
        """Options that need a new run and differ from the shown result's are named above it."""
        shown = self.results.result()
        try:
            now = self.options_bar.options()
        except ValueError:
            now = None  # a schedule being typed: nothing to compare yet
        if shown is None:
            self.results.set_stale([])
            return
        differ = [] if now is None else run_gate.changed_options(shown, now)
        # another model open than the one that made the shown run: its samples are that model's
        other = (self._shown is not None and self._entry is not None and self._shown.model_key
                 and self._shown.model_key != str(self._entry.path))
        self.results.set_stale(differ, f"{self._entry.name} is open" if other else "")

    # ---- epsilon, history and compare -----------------------------------------------------
    def _on_epsilon(self, epsilon: float) -> None:
        result = self.results.set_epsilon(epsilon)
        if result is not None and self._shown is not None:
            self._shown.result = result
            self.history.update_entry(self._shown)
        self.compare.set_epsilon(epsilon)

    def _show_entry(self, entry: HistoryEntry, status: str = "") -> None:
        self._shown = entry
        eps = self.options_bar.epsilon.value()
        self.results.show_result(entry.result, eps, status=status)
        entry.result = self.results.result()
        self.history.update_entry(entry)
        self.resultShown.emit(entry.result)

    def reopen(self, entry: HistoryEntry) -> None:
        """Show a past run at once and put its model, query, site and position back."""
        r = entry.result
        if self._entry is None or str(self._entry.path) != entry.model_key:
            found = self.picker.find(entry.model_key)
            if found is not None:
                self.choose_model(found)
        self.options_bar.epsilon.blockSignals(True)
        self.options_bar.epsilon.setValue(r.epsilon)
        self.options_bar.epsilon.blockSignals(False)
        self.editor.set_text(entry.query_text)
        self.set_target(r.site_short, r.query_position)
        self.tabs.setCurrentIndex(0)
        self._show_entry(entry)

    def _on_tab(self, index: int) -> None:
        """Comparing needs width: the diagram steps back while the Compare tab is open."""
        if self.tabs.widget(index) is self.compare:
            self._sizes_before_compare = self.split.sizes()
            total = sum(self._sizes_before_compare)
            self.split.setSizes([self.diagram_panel.minimumWidth(), total - self.diagram_panel.minimumWidth()])
        elif self._sizes_before_compare is not None:
            self.split.setSizes(self._sizes_before_compare)
            self._sizes_before_compare = None

    def pin(self, entry: HistoryEntry, side: int) -> None:
        self.compare.pin(entry, side, self.options_bar.epsilon.value())
        self.tabs.setCurrentWidget(self.compare)
        self.colouring.schedule()  # a run replaced while it was being coloured is coloured now

    # ---- export ---------------------------------------------------------------------------
    def export_csv(self, path: str | None = None):
        """File > Export samples to CSV (asks for a path when none is given); the path written or None."""
        return export_actions.export_samples_csv(self, path)

    def export_paper_json(self, path: str | None = None):
        """File > Export samples for the paper's viewer; the path written, or None (also when the
        file waits for the samples' colours: it is written once they are)."""
        return export_actions.export_paper_json(self, path)

    def export_notebook(self, path: str | None = None):
        """File > Export as notebook: a Jupyter notebook that re-runs the shown result; the path or None."""
        return export_actions.export_notebook(self, path)

    def import_paper_json(self, path: str | None = None):
        """File > Import paper JSON (asks for a file when none is given); the result shown or None."""
        return export_actions.import_paper_json(self, path)

    def export_png(self, which: str, path: str | None = None):
        """'results' (what the tab shows) or 'diagram' (the whole model) as a PNG."""
        return export_actions.export_png(self, which, path)

    def export_flow(self, which: str, path: str | None = None):
        """'json' (the graph with the edges on screen), 'neuronpedia' (graph JSON pruned by influence) or 'png'."""
        return export_actions.export_flow(self, which, path)

    # ---- decoder training -----------------------------------------------------------------
    def open_train_dialog(self):
        """File > Train decoder…: one non-modal dialog, kept (with its curves) while the window lives."""
        if self.train_dialog is None:
            from app.training.dialog import TrainDialog

            self.train_dialog = TrainDialog(self)
            self.train_dialog.modelTrained.connect(self._on_model_trained)
            self.train_dialog.useModel.connect(self._use_trained_model)
            self.train_dialog.statusMessage.connect(lambda text: self.statusBar().showMessage(text, 20000))
            if self._entry is not None:
                self.train_dialog.choose_base(self._entry)  # or names its folder in the command to run
        self.train_dialog.show()
        self.train_dialog.raise_()
        self.train_dialog.activateWindow()
        return self.train_dialog

    def _on_model_trained(self, entry) -> None:
        self.picker.refresh()
        self.statusBar().showMessage(f"New model {entry.name} is in the model picker.", 15000)

    def _use_trained_model(self, entry) -> None:
        found = self.picker.find(str(entry.path))
        if found is not None:
            self.choose_model(found)

    # ---- settings and closing -----------------------------------------------------------
    def save_settings(self) -> None:
        if not self._save_enabled:
            return
        s = self.settings
        if self._entry is not None:
            s.model = self._entry.name if self._entry.source != "folder" else str(self._entry.path)
        if self.editor.tokens() is not None:
            s.query = self.editor.text()
        s.site, s.position = self._site, self._position
        s.epsilon = self.options_bar.epsilon.value()
        s.metric = self.options_bar.metric_box.currentText()
        s.candidates = self.options_bar.candidates.value()
        s.schedule = self.options_bar.schedule_list()
        s.seed = self.options_bar.seed.value()
        s.same_label, s.sampler = self.options_bar.same_label.isChecked(), self.options_bar.sampler()
        s.geometry = self.saveGeometry().toBase64().data().decode("ascii")
        s.window_state = self.saveState().toBase64().data().decode("ascii")
        s.splitter_state = self.split.saveState().toBase64().data().decode("ascii")
        s.folders = self.picker.opened_folders()[-MAX_FOLDERS:]
        try:
            self.store.save(s)
        except OSError as e:
            self.statusBar().showMessage(f"Could not save settings: {e}", 10000)

    def closeEvent(self, event) -> None:
        self._save_timer.stop()
        self.save_settings()
        self._partial_timer.stop()
        self.flow.stop()
        if self.train_dialog is not None:  # a run stops at its next step, its checkpoint saved
            self.training_stuck = not self.train_dialog.shutdown()
        self.engine.shutdown()  # the engine's pipe closes and it exits: nothing here waits for torch
        event.accept()

    def show_about(self) -> QMessageBox:
        from engine.cli.main import package_version

        return show_message(self, f"About {APP_TITLE}",
                            f"InversionView Studio {package_version()}: what does an activation encode? Pick a "
                            "site and position, run, and read what the close samples share.\n\n"
                            "Command line: python main.py --help", icon=QMessageBox.Information)
