"""Running a query and showing results: Run, the streamed partial results, the finished run in the
history, epsilon, reopening a past run, pinning one for Compare.

The window builds the views; this object moves results between the engine client, the results
view, the history and the session (app/session.py). Partial results are painted at most every
REPAINT_MS (the first chunk at once, so the first rows appear quickly).
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import QObject, QTimer

from app.query import run_gate
from app.results.history import HistoryEntry
from app.style import error_css
from app.workers.query_request import QueryRequest

REPAINT_MS = 100


class Runner(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.w = window
        self._pending = None  # the newest partial result not painted yet
        self._first_shown = False
        self._partial_timer = QTimer(self)
        self._partial_timer.setSingleShot(True)
        self._partial_timer.timeout.connect(self._paint_pending)
        e = window.engine
        e.runPartial.connect(self._on_partial)
        e.runFinished.connect(self._on_finished)
        e.runFailed.connect(self._on_run_failed)
        e.runCancelled.connect(self._on_run_cancelled)

    def run_query(self) -> int | None:
        if self.w.session.entry is None:
            self.w.statusBar().showMessage("Choose a model first.", 8000)
            return None
        if self.w.editor.tokens() is None:
            self.w.statusBar().showMessage(f"The query is not valid: {self.w.editor.error()}", 8000)
            return None
        if self.w.cannot_run():  # Ctrl+Enter and the menu too, not only the button
            self.w.statusBar().showMessage(self.w.cannot_run(), 8000)
            return None
        try:
            options = self.w.options_bar.options(colour=not self.w.colouring.available(), keep=self.w.editor.kept())
        except ValueError as e:
            self.w.statusBar().showMessage(f"Schedule: {e}", 8000)
            return None
        self.w.colouring.reset()  # the engine thread is the new query's
        session = self.w.session
        request = QueryRequest(model_key=session.model_key, text=self.w.editor.text(), site=session.site,
                               position=self.w.session.position, options=options)
        self.w.session.last_request = (request, self.w.session.entry)  # what File > Export as notebook re-runs
        self._partial_timer.stop()
        self._pending, self._first_shown = None, False
        self.w.session.shown = None
        self.w.tabs.setCurrentIndex(0)
        self.w.results.clear()
        self.w.results.summary.setText("Sampling…")
        waiting = "waiting for the model to load…" if self.w.engine.loading else ""
        self.w.run_bar.set_running(True, waiting)
        return self.w.engine.run(request)

    def _map_wanted(self):
        """What "Map this input" maps: (model key, text, layers, options), or why it cannot."""
        session = self.w.session
        why = run_gate.cannot_map(session.loaded if session.entry is not None else None, self.w.options_bar.sampler())
        if why:
            return why
        if self.w.editor.tokens() is None:
            return f"The input is not valid: {self.w.editor.error()}"
        try:
            o = self.w.options_bar.options()
        except ValueError as e:
            return f"Schedule: {e}"
        options = {"epsilon": o.epsilon, "metric": o.metric, "seed": o.seed, "schedule": o.schedule,
                   "same_label": o.same_label, "sampler": o.sampler}
        return str(self.w.session.entry.path), self.w.editor.text(), self.w.session.entry.probed.n_layers, options

    def _show_mapped(self, result) -> None:
        """A mapped node's full result, opened from the map like a finished run."""
        self.show_outside_result(result, str(self.w.session.entry.path) if self.w.session.entry else "")

    def show_outside_result(self, result, model_key: str) -> None:
        """A result that no Run made here (a mapped node's, an imported file's), shown and kept in
        the history like a finished run."""
        self.w.tabs.setCurrentIndex(0)
        entry = HistoryEntry(result, model_key=model_key, query_text=self.w.editor.text())
        self.w.history.add(entry)
        self._show_entry(entry)

    def cancel_query(self) -> None:
        if self.w.engine.running:
            self.w.engine.cancel()
            self.w.run_bar.set_finished("cancelling…")

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
        self.w.results.show_result(result, self.w.options_bar.epsilon.value(), status="running")
        self.w.resultShown.emit(result)

    def _on_finished(self, result) -> None:
        self._partial_timer.stop()
        self._pending = None
        entry = HistoryEntry(result, model_key=str(self.w.session.entry.path) if self.w.session.entry else "",
                             query_text=self.w.editor.text())
        self.w.history.add(entry)
        self._show_entry(entry, status="cancelled")
        if result.complete:
            self.w.run_bar.set_finished(f"done: {result.candidates:,} candidates in {result.seconds:.1f} s")
        else:
            self.w.run_bar.set_finished(f"cancelled at {result.candidates_done:,} / {result.candidates:,}")
        self.w.save_timer.start()

    def _on_run_cancelled(self) -> None:
        self._partial_timer.stop()
        self.w.run_bar.set_finished("cancelled before it started")
        self.w.results.summary.setText("Cancelled before the engine started it.")

    def _on_run_failed(self, message: str) -> None:
        self._partial_timer.stop()
        self.w.run_bar.set_finished("failed")
        self.w.results.summary.setText(f"<span style='color:{error_css()}'>{escape(message)}</span>")
        self.w.statusBar().showMessage(message, 20000)

    def _mark_if_stale(self) -> None:
        """Options that need a new run and differ from the shown result's are named above it."""
        shown = self.w.results.result()
        try:
            now = self.w.options_bar.options()
        except ValueError:
            now = None  # a schedule being typed: nothing to compare yet
        if shown is None:
            self.w.results.set_stale([])
            return
        differ = [] if now is None else run_gate.changed_options(shown, now)
        # another model open than the one that made the shown run: its samples are that model's
        session = self.w.session
        other = (session.shown is not None and session.entry is not None and session.shown.model_key
                 and self.w.session.shown.model_key != str(self.w.session.entry.path))
        self.w.results.set_stale(differ, f"{self.w.session.entry.name} is open" if other else "")

    def _on_epsilon(self, epsilon: float) -> None:
        result = self.w.results.set_epsilon(epsilon)
        if result is not None and self.w.session.shown is not None:
            self.w.session.shown.result = result
            self.w.history.update_entry(self.w.session.shown)
        self.w.compare.set_epsilon(epsilon)

    def _show_entry(self, entry: HistoryEntry, status: str = "") -> None:
        self.w.session.shown = entry
        eps = self.w.options_bar.epsilon.value()
        self.w.results.show_result(entry.result, eps, status=status)
        entry.result = self.w.results.result()
        self.w.history.update_entry(entry)
        self.w.resultShown.emit(entry.result)

    def reopen(self, entry: HistoryEntry) -> None:
        """Show a past run at once and put its model, query, site and position back."""
        r = entry.result
        if self.w.session.entry is None or str(self.w.session.entry.path) != entry.model_key:
            found = self.w.picker.find(entry.model_key)
            if found is not None:
                self.w.choose_model(found)
        self.w.options_bar.epsilon.blockSignals(True)
        self.w.options_bar.epsilon.setValue(r.epsilon)
        self.w.options_bar.epsilon.blockSignals(False)
        self.w.editor.set_text(entry.query_text)
        self.w.set_target(r.site_short, r.query_position)
        self.w.tabs.setCurrentIndex(0)
        self._show_entry(entry)

    def pin(self, entry: HistoryEntry, side: int) -> None:
        self.w.compare.pin(entry, side, self.w.options_bar.epsilon.value())
        self.w.tabs.setCurrentWidget(self.w.compare)
        self.w.colouring.schedule()  # a run replaced while it was being coloured is coloured now
