"""Choosing a model: the picker's choice (or the last session's) set up in the window and loaded by
the engine, its readiness said, a failure or an engine restart said in one line.

The model, its task and what the engine reports of it live in the session (app/session.py).
"""
from __future__ import annotations

from PySide6.QtCore import QObject

from app.query import run_gate
from app.workers.query_request import default_site
from engine.errors import USER_ERRORS
from engine.probed.sites import all_sites, paper_sites
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import TEXT_TASK


class ModelChoice(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.w = window
        e = window.engine
        e.modelLoading.connect(self._on_model_loading)
        e.modelLoaded.connect(self._on_model_loaded)
        e.modelFailed.connect(self._on_model_failed)
        e.engineLost.connect(self._on_engine_lost)
        window.picker.modelChosen.connect(self.choose_model)

    def start(self):
        """Choose the last used model (the bundled 'counting' by default); the engine loads it.

        Returns the ModelEntry chosen, or None when there is no model at all.
        """
        saved = self.w.picker.find(self.w.settings.model)
        entry = saved or self.w.picker.find(DEFAULT_MODEL)
        if entry is None and self.w.picker.entries():
            entry = self.w.picker.entries()[0]
        if entry is None:
            self.w.picker.set_state("No models found: train one (python main.py --help) or open a model folder.", True)
            return None
        # the saved site, position, query and query options belong to the saved model: another one
        # (the saved folder has gone) starts from its own task's defaults
        self.choose_model(entry, restoring=saved is not None)
        return entry

    def choose_model(self, entry, restoring: bool = False) -> None:
        self.w.session.restoring = restoring
        try:
            task = entry.load_task()  # a text model's tokenizer, read from its folder
        except USER_ERRORS as e:
            self.w.picker.select(str(entry.path))
            self.w.session.entry, self.w.session.loaded = entry, None
            self._on_model_failed(f"Could not load model {entry.name!r}: {e}")
            return
        if self.w.session.entry is not None and (self.w.session.entry.task != entry.task or task.name == TEXT_TASK):
            # another task or tokenizer: its own default position
            self.w.session.position, self.w.session.position_label = -1, ""
        self.w.session.entry, self.w.session.loaded, self.w.session.task = entry, None, task
        self.w.picker.select(str(entry.path))
        self.w.flow.set_model(None)  # computed once the engine has loaded it; the vocabulary comes then too
        cfg = entry.probed
        marked = [s.short for s in paper_sites(cfg)] if task.paper_sites else []  # none for a text model
        self.w.diagram.set_model(cfg.n_layers, cfg.n_heads, marked, parallel=cfg.parallel_attn_mlp)
        shorts = {s.short for s in all_sites(cfg)}
        if restoring and self.w.settings.site in shorts:
            self.w.session.site = self.w.settings.site
        elif self.w.session.site not in shorts:
            self.w.session.site = default_site(entry.task)
        if restoring:
            self.w.session.position = self.w.settings.position
        self.w.editor.set_task(task, self.w.settings.query if restoring and self.w.settings.query else None)
        self.w.options_bar.set_task_defaults(task, reset=not restoring)
        self.w.engine.load_model(entry)
        self.w.update_run_enabled()
        self.w.runner._mark_if_stale()  # the shown run is another model's now
        self.w.map.forget_message()  # e.g. "Cannot map: … no decoder" was about the model before

    def _on_model_loading(self, name: str) -> None:
        self.w.picker.set_state(f"Loading {name}… (first load imports torch: a few seconds)")
        self.w.model_state.setText(f"{name}: loading…")

    def _on_model_loaded(self, info) -> None:
        if self.w.session.entry is None or info.key != str(self.w.session.entry.path):
            return
        self.w.session.loaded = info
        self.w.picker.set_state(f"{info.name} ready ({info.seconds:.1f} s){run_gate.model_note(info)}")
        self.w.model_state.setText(f"{info.name}: ready")
        if info.trained_sites:
            self.w.diagram.set_trained_sites(info.trained_sites)
            if self.w.session.site not in info.trained_sites and not self.w.session.restoring:
                # another model's decoder knows other sites: move to one this one was trained on
                old, default = self.w.session.site, default_site(self.w.session.entry.task)
                self.w.session.site = default if default in info.trained_sites else info.trained_sites[0]
                self.w.statusBar().showMessage(f"{info.name}'s decoder was not trained on {old}; "
                                             f"chose {self.w.session.site}", 15000)
        self.w.update_target()
        self.w.update_run_enabled()
        self.w.map.forget_message()  # "Cannot map: … no decoder" no longer holds once it has one
        # the target picker's vocabulary: the engine thread made the display table while loading
        # (50k tokens take 0.1 s), so this only hands it over
        self.w.flow.set_model(info.key, self.w.session.task.vocab.strings())

    def _on_engine_lost(self, line: str) -> None:
        """The engine process died (killed, crashed, out of memory): the query, site, results and history
        stay on screen; the client has started another engine and is reloading the model."""
        self.w.session.loaded = None
        self.w.picker.set_state(line, error=True)
        self.w.model_state.setText("engine restarting…")
        self.w.statusBar().showMessage(line, 30000)
        self.w.update_run_enabled()

    def _on_model_failed(self, message: str) -> None:
        self.w.picker.set_state(message, error=True)
        self.w.model_state.setText("model not loaded")
        self.w.statusBar().showMessage(message, 20000)
        self.w.session.loaded = None
        self.w.update_run_enabled()
        fallback = self.w.picker.find(DEFAULT_MODEL)
        entry = self.w.session.entry
        if self.w.session.restoring and fallback is not None and entry is not None and entry.path != fallback.path:
            # the last session's model no longer loads: start on the bundled default, and say why
            broken = self.w.session.entry.name
            self.choose_model(fallback)
            self.w.statusBar().showMessage(f"{broken} could not be loaded ({message}); opened {fallback.name} instead",
                                         30000)
