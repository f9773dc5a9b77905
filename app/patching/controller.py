"""Runs the causal check through the engine client and draws its answer (the Causal check tab).

What it needs from the window: the engine client, the query editor (the clean input), the
results table (a sample as the corrupted input), the diagram with the flow view and the map
(whose overlays it must not fight: drawing its own clears the map and holds the flow graph;
a map starting clears this one), `set_target` (a table row selects its node) and the window's
session (the open model and its task). All torch work is in the "patch" job of the engine process
(engine/server/backend.py); here only short inputs are tokenized, to say where they differ.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction

from app.patching.inputs import corrupt_ids, corrupt_note, flipped_text, position_items
from app.patching.overlay import header_html, patch_overlay
from app.workers.job_request import JobRequest
from engine.probed.sites import canonical_site
from engine.tasks.base import TaskInputError

KIND = "patch"
# the engine's messages name the command line's options; the panel names its own controls
PANEL_WORDS = ((", give --corrupt-answer, or use --metric prob", ", or choose the probability metric"),
               ("give both answer tokens (--answer and --corrupt-answer)", "choose an earlier answer position"))
MOST_TOKENS_LISTED = 2000  # a larger vocabulary (GPT-2's 50k) is typed into the token box instead


class PatchController(QObject):
    reportShown = Signal(object)  # the PatchReport now on the diagram and in the table

    def __init__(self, window, panel, parent=None):
        super().__init__(parent or window)
        self.window, self.panel, self.engine = window, panel, window.engine
        self.diagram, self.flow, self.map = window.diagram, window.flow, window.map
        self.report = None  # the PatchReport shown
        self.shown_for: tuple | None = None  # (model key, clean text) of the report shown
        self._request: JobRequest | None = None
        self._drawn = False  # our overlay is on the diagram (the flow graph is held for it)
        self._task = None
        self._labels: list[str] = []
        self._task_answer = -1  # the task's answer position of the query
        self._flips: list[list] = []  # [position, token] pairs that made the corrupted input...
        self._flip_ids: list[int] = []  # ...these ids...
        self._flip_text: str | None = None  # ...while the line edit still shows this text
        p = panel
        p.run_button.clicked.connect(lambda: self.run())
        p.cancel_button.clicked.connect(self.cancel)
        p.clear_button.clicked.connect(lambda: self.clear())
        p.flip_button.clicked.connect(self.flip)
        p.from_result.clicked.connect(lambda: self.use_result_row())
        p.corrupt.textChanged.connect(self._update_note)
        p.answer_position.currentIndexChanged.connect(lambda _: self._update_note())
        p.corrupt.returnPressed.connect(lambda: self.run())
        p.table.selectionModel().currentRowChanged.connect(self._on_row)
        self.engine.jobItem.connect(self._on_item)
        self.engine.jobFinished.connect(self._on_finished)
        self.engine.jobFailed.connect(self._on_failed)
        self.engine.modelLoaded.connect(lambda _: self.query_changed())
        window.editor.queryChanged.connect(self.query_changed)
        self.map.mapStarting.connect(lambda: self.clear())
        self.diagram.nodeClicked.connect(self._select_row_of)
        table = window.results.table
        self.use_action = QAction("Use as corrupted input (causal check)", table)
        self.use_action.triggered.connect(lambda: self.use_result_row())
        table.addAction(self.use_action)
        table.setContextMenuPolicy(Qt.ActionsContextMenu)

    # ---- inputs ------------------------------------------------------------------------------

    def context(self) -> tuple:
        """(the open model's entry, its task), or (None, None)."""
        session = self.window.session
        return session.entry, session.task
    def open(self) -> None:
        """Query > Patch…: the tab in front, the cursor in the corrupted input."""
        self.window.tabs.setCurrentWidget(self.panel)
        self.panel.corrupt.setFocus()

    def query_changed(self) -> None:
        """The clean input follows the query; a new model's task empties the rest."""
        entry, task = self.context()
        editor, p = self.window.editor, self.panel
        if task is not self._task:
            self._task = task
            self._flips, self._flip_text = [], None
            p.corrupt.clear()
            self._fill_tokens(task)
        ids = editor.tokens()
        p.clean.setText(editor.text() if ids is not None else "")
        labels = editor.labels() if ids is not None else []
        if labels != self._labels:
            self._labels = labels
            self._fill_positions(task, ids, labels)
        if self.shown_for is not None and (entry is None or self.shown_for != (str(entry.path), editor.text())):
            self.clear("The query or model changed since the check: run it again.")
        self._update_note()

    def _fill_tokens(self, task) -> None:
        box = self.panel.flip_token
        box.clear()
        if task is None:
            return
        size = task.vocab.vocab_size
        listed = size <= MOST_TOKENS_LISTED
        box.setEditable(not listed)
        box.addItems(task.vocab.token_strings(list(range(size))) if listed else [])

    def _fill_positions(self, task, ids, labels: list[str]) -> None:
        p = self.panel
        for box in (p.flip_position, p.answer_position):
            box.clear()
            box.addItems(position_items(labels))
        if not labels:
            p.answer_note.setText("")
            return
        p.flip_position.setCurrentIndex(min(1, len(labels) - 1))  # 0 is the start token
        try:
            answer = task.answer_position(ids)
        except TaskInputError:
            answer = len(labels) - 1
        p.answer_position.setCurrentIndex(answer)
        p.answer_note.setText("(the task's answer position)")
        self._task_answer = answer

    def _update_note(self) -> None:
        text, p = self.panel.corrupt.text(), self.panel
        if p.answer_position.count():
            default = p.answer_position.currentIndex() == self._task_answer
            p.answer_note.setText("(the task's answer position)" if default else "(chosen)")
        clean = self.window.editor.tokens()
        if self._task is None or clean is None:
            p.set_note("", ok=True)
            return
        note, ok = corrupt_note(self._task, clean, text)
        p.set_note(note, ok)

    def flip(self) -> bool:
        """Replace one token of the corrupted input (of the query when there is none yet)."""
        task, clean, p = self._task, self.window.editor.tokens(), self.panel
        if task is None or clean is None:
            p.set_note("Fix the query first: the flip starts from it.", ok=False)
            return False
        base, flips = list(clean), []
        if p.corrupt.text() and p.corrupt.text() == self._flip_text:
            base, flips = list(self._flip_ids), [list(f) for f in self._flips]
        elif p.corrupt.text().strip():
            try:
                typed = corrupt_ids(task, p.corrupt.text())
            except TaskInputError:
                typed = None
            if typed is not None and len(typed) == len(clean):
                base, flips = typed, None  # a typed input: flipped as text from now on
        position = p.flip_position.currentIndex()
        token = p.flip_token.currentIndex() if not p.flip_token.isEditable() else p.flip_token.currentText()
        try:
            ids, text = flipped_text(task, base, position, token)
        except TaskInputError as e:
            p.set_note(str(e), ok=False)
            return False
        self._flips = [*flips, [position, token]] if flips is not None else []
        self._flip_ids = ids
        self._flip_text = text if flips is not None else None
        p.corrupt.setText(text)
        return True

    def use_result_row(self, row: int | None = None) -> bool:
        """The selected (or given) sample of the results table becomes the corrupted input."""
        table = self.window.results.table
        if row is None:
            rows = table.selectionModel().selectedRows() if table.selectionModel() else []
            row = rows[0].row() if rows else table.currentIndex().row()
        model = table.model()
        if row is None or not 0 <= row < model.rowCount():
            self.panel.set_note("Select a sample in the Results tab first.", ok=False)
            self.open()
            return False
        sample = model.sample(row)
        text = self._task.query_text(sample.tokens) if self._task is not None and sample.tokens else sample.text
        self._flips, self._flip_text = [], None
        self.panel.corrupt.setText(text)
        self.open()
        return True

    # ---- running -----------------------------------------------------------------------------
    def run(self) -> JobRequest | None:
        entry, task = self.context()
        editor, p = self.window.editor, self.panel
        problem = ("Choose a model first." if entry is None or task is None
                   else "This engine cannot run the causal check." if not self.engine.can_run_job(KIND)
                   else f"The query is not valid: {editor.error()}" if editor.tokens() is None
                   else "Type a corrupted input, or flip a token." if not p.corrupt.text().strip() else "")
        if problem:
            p.show_error(problem)
            return None
        params = {"text": editor.text(), "metric": p.metric_key(), "position": p.answer_position.currentIndex()}
        if self._flips and p.corrupt.text() == self._flip_text:
            params["flips"] = [list(f) for f in self._flips]
        else:
            params["corrupt"] = p.corrupt.text()
        if self.map.running:
            self.map.clear()  # its answer would be drawn over anyway, and its job would hold this one up
        self._request = JobRequest(KIND, str(entry.path), params)
        p.set_state("running")
        p.job.busy()  # until the first batch reports
        p.show_message("Patching every node…" if not self.engine.loading else "Waiting for the model to load…")
        self.engine.run_job(self._request)
        return self._request

    def cancel(self) -> None:
        if self._request is not None:
            self.engine.cancel_job(KIND)
            self._request = None
            self.panel.set_state("shown" if self.report is not None else "idle")
            self.panel.show_message("Cancelled.")

    @property
    def running(self) -> bool:
        return self._request is not None

    def _on_item(self, request, item, done: int, total: int) -> None:
        if request is self._request:
            self.panel.set_progress(done, total)

    def _on_finished(self, request, report) -> None:
        if request is not self._request:
            return
        self._request = None
        if report is None:  # cancelled on the engine side
            self.panel.set_state("shown" if self.report is not None else "idle")
            return
        entry, _ = self.context()
        self.shown_for = (request.model_key, request.params["text"])
        self.show_report(report, entry.probed.n_layers if entry is not None else 0)

    def _on_failed(self, request, message: str) -> None:
        if request is self._request:
            self._request = None
            self.panel.set_state("shown" if self.report is not None else "idle")
            for cli, panel in PANEL_WORDS:
                message = message.replace(cli, panel)
            self.panel.show_error(message)

    # ---- the answer --------------------------------------------------------------------------
    def show_report(self, report, n_layers: int) -> None:
        """The table, the header and the diagram's colours; the map and the flow graph step aside."""
        if self.map.rows or self.map.running:
            self.map.clear()
        self.flow.hold(True)
        self._drawn = True
        self.diagram.set_overlay(patch_overlay(report, n_layers))
        self.report = report
        p = self.panel
        p.table_model.set_report(report)
        p.header.setText(header_html(report))
        p.show_message("")
        p.set_state("shown")
        self.reportShown.emit(report)

    def clear(self, note: str = "") -> None:
        """Take the answer off the diagram and give the diagram back to the flow graph."""
        if self._request is not None:
            self.engine.cancel_job(KIND)
            self._request = None
        self.report, self.shown_for = None, None
        p = self.panel
        p.table_model.set_report(None)
        p.header.setText("")
        p.show_message(note)
        p.set_state("idle")
        if self._drawn:
            self._drawn = False
            self.flow.hold(False)

    def _on_row(self, current, _previous) -> None:
        if current.isValid() and self.report is not None:
            e = self.panel.table_model.effect(current.row())
            if self.window.target() != (e.site, e.position):
                self.window.set_target(e.site, e.position)

    def _select_row_of(self, short: str, position: int) -> None:
        """A node clicked in the diagram is found in the table (x1.pre is x0.post's row)."""
        if self.report is None:
            return
        row = self.panel.table_model.row_of(canonical_site(short), position)
        if row is not None:
            self.panel.table.selectRow(row)
            self.panel.table.scrollTo(self.panel.table_model.index(row, 0))
