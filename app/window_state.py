"""The window's remembered state: the settings applied at start and saved on the way, and its fit to the screen.

The model, query, site and position come from the session (app/session.py); the query options
from the options bar; the geometry, dock state and splitter from Qt as base64 text.
"""
from __future__ import annotations

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QGuiApplication

from app.launch import HEADLESS_PLATFORMS
from app.node_dock import redock
from app.settings import MAX_FOLDERS


def restore(w) -> None:
    """Apply the saved query options, geometry and dock state; say why the settings were set aside, if they were."""
    s = w.settings
    w.options_bar.apply(s.epsilon, s.metric, s.candidates, s.schedule, s.seed, s.same_label, s.sampler)
    w.options_bar.apply_search(s.search_chains, s.search_temperature, s.search_grammar)
    for text, setter in ((s.geometry, w.restoreGeometry), (s.window_state, w.restoreState),
                         (s.splitter_state, w.split.restoreState)):
        if text:
            setter(QByteArray.fromBase64(text.encode("ascii")))
    redock(w.node_dock)
    fit_to_screen(w)
    if w.store.note:
        w.statusBar().showMessage(w.store.note, 15000)


def fit_to_screen(w, room=None) -> None:
    """A geometry saved on a bigger screen (or at another scale factor) is shrunk (down to the
    window's minimum size) and moved into this screen's available area (or `room`)."""
    if room is None:
        if QGuiApplication.platformName() in HEADLESS_PLATFORMS:
            return  # an offscreen "screen" is a made-up size: keep the designed one (smoke screenshots)
        screen = w.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        room = screen.availableGeometry()
    from app.window_fit import fit_minimum, frame_extra

    fit_minimum(w, room)  # a minimum size larger than the screen (QT_SCALE_FACTOR=2) shrinks to fit it
    extra = frame_extra(w)  # the frame counts too
    width = min(w.width(), room.width() - extra.width())
    height = min(w.height(), room.height() - extra.height())
    if (width, height) != (w.width(), w.height()):
        w.resize(width, height)
    frame = w.frameGeometry()
    # inside the screen where it fits; where even the minimum size does not, the title bar
    # (top left) stays on screen so the window can still be moved and resized
    x = max(room.left(), min(frame.x(), room.right() - frame.width() + 1))
    y = max(room.top(), min(frame.y(), room.bottom() - frame.height() + 1))
    if (x, y) != (frame.x(), frame.y()):
        w.move(x, y)


def save(w) -> None:
    """Write what the window is working on to the settings file (a failure is said, never raised)."""
    s = w.settings
    entry = w.session.entry
    if entry is not None:
        s.model = entry.name if entry.source != "folder" else str(entry.path)
    if w.editor.tokens() is not None:
        s.query = w.editor.text()
    s.site, s.position = w.session.site, w.session.position
    s.epsilon = w.options_bar.epsilon.value()
    s.metric = w.options_bar.metric_box.currentText()
    s.candidates = w.options_bar.candidates.value()
    s.schedule = w.options_bar.schedule_list()
    s.seed = w.options_bar.seed.value()
    s.same_label, s.sampler = w.options_bar.same_label.isChecked(), w.options_bar.sampler()
    s.search_chains, s.search_temperature, s.search_grammar = w.options_bar.search_settings()
    s.geometry = w.saveGeometry().toBase64().data().decode("ascii")
    s.window_state = w.saveState().toBase64().data().decode("ascii")
    s.splitter_state = w.split.saveState().toBase64().data().decode("ascii")
    s.folders = w.picker.opened_folders()[-MAX_FOLDERS:]
    try:
        w.store.save(s)
    except OSError as e:
        w.statusBar().showMessage(f"Could not save settings: {e}", 10000)
