"""Saving what is on screen: samples as CSV (engine.export.write_csv) or as the paper's viewer
reads them (engine/store/paper_json.py), a result as a notebook that re-runs it
(engine/notebook/), and views as PNG.

PNG only: pyqtgraph's SVG export fails with PySide6 6.12 (docs/design.md §6), and a grab of the
widget is what the user sees anyway.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from app.messages import show_message
from app.results.save_folder import remember, start_folder
from engine.errors import OutputError


def ask_save_path(parent: QWidget, title: str, suggested: str, filter_text: str) -> str:
    """The path chosen ('' when cancelled), asked in the folder last used (app/results/save_folder.py)."""
    path, _ = QFileDialog.getSaveFileName(parent, title, str(start_folder(parent) / suggested), filter_text)
    remember(parent, path)
    return path


def suggested_name(result, suffix: str) -> str:
    site = result.site_short.replace(".", "_")
    return f"{result.model}_{site}_p{result.query_position}{suffix}"


def shown_result(window):
    """The result on screen, or None with the status bar saying to run a query first."""
    result = window.results.result()
    if result is None:
        window.statusBar().showMessage("Nothing to export yet: run a query first.", 8000)
    return result


def write_samples_csv(result, path: str) -> Path:
    """engine.export.write_csv; imported here, not at start-up, since the engine lands it with run_query."""
    from engine.store.export import write_csv

    path = Path(path)
    if path.suffix.lower() != ".csv":
        path = path.with_suffix(".csv")
    write_csv(result, path)
    return path


def save_png(widget: QWidget, path: str) -> Path:
    """What the widget shows now, as a PNG."""
    return save_image(widget.grab(), path)


def save_image(image, path: str) -> Path:
    """A QImage or QPixmap as a PNG (the suffix is added when missing)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError(f"could not encode {path.name} as PNG")
    return write_atomic(path, bytes(buffer.data()))  # like every output file: atomic, regular files only


def export_samples_csv(window, path: str | None = None):
    """The shown result's samples as CSV; problems become a message, never an exception."""
    result = shown_result(window)
    if result is None:
        return None
    path = path or ask_save_path(window, "Export samples to CSV", suggested_name(result, ".csv"), "CSV (*.csv)")
    if not path:
        return None
    try:
        written = write_samples_csv(result, path)
    except Exception as e:  # noqa: BLE001 - a failed export is a message, never a crash
        show_message(window, "Export failed", f"Could not write {path}: {e}")
        return None
    window.statusBar().showMessage(f"Wrote {len(result.samples):,} samples to {written}", 10000)
    return written


def export_notebook(window, path: str | None = None):
    """File > Export as notebook: a Jupyter notebook (engine/notebook/) that re-runs the shown
    result through the engine's API, with the options of the query that drew it (the last one run,
    when it is the one shown; else what the result records). The path written, or None."""
    result = shown_result(window)
    if result is None:
        return None
    if not result.model:
        window.statusBar().showMessage("This result names no model to re-run it with.", 8000)
        return None
    path = path or ask_save_path(window, "Export as notebook", suggested_name(result, ".ipynb"),
                                 "Jupyter notebook (*.ipynb)")
    if not path:
        return None
    path = Path(path)
    if path.suffix.lower() != ".ipynb":
        path = path.with_suffix(".ipynb")
    try:
        from engine.notebook import model_ref, options_of, query_notebook, write_notebook

        request, entry = window.session.last_request or (None, None)
        drew = (request is not None and entry is not None and entry.name == result.model
                and request.site == result.site_short and request.position == result.query_position
                and request.options.seed == result.seed and request.options.candidates == result.candidates)
        ref = model_ref(entry) if drew else result.model
        nb = query_notebook(result, ref, options_of(result, request.options if drew else None),
                            text=request.text if drew else None, prompts=entry.prompts if drew else None)
        written = write_notebook(nb, path)
    except Exception as e:  # noqa: BLE001 - a failed export is a message, never a crash
        show_message(window, "Export failed", f"Could not write {path}: {e}")
        return None
    window.statusBar().showMessage(f"Wrote a notebook that re-runs this result to {written}", 10000)
    return written


def export_paper_json(window, path: str | None = None):
    """File > Export samples for the paper's viewer: the shown result as the InversionView paper's
    web viewer reads it, with each token's prob-diff colour. The window's queries arrive plain and
    are coloured on demand (app/results/colouring.py), so when some samples have no colours yet
    they are coloured first and the file is written once they are (the status bar says so). The
    path written, or None (nothing to export, cancelled, or written later)."""
    from engine.store.paper_json import paper_file_name

    result = shown_result(window)
    if result is None:
        return None
    path = path or ask_save_path(window, "Export samples for the paper's viewer", paper_file_name(result),
                                 "JSON (*.json)")
    if not path:
        return None
    colouring = window.colouring
    missing = colouring.missing(result, range(len(result.samples)))
    if missing and colouring.available():
        PendingPaperExport(window, result, path, len(missing))
        return None
    return _write_paper_json(window, result, path)


class PendingPaperExport:
    """A paper JSON export waiting for the shown result's colours; one at a time per window. It
    looks after each coloured part (the runs pinned in Compare are coloured after the shown one:
    the file need not wait for them), and at idle (no job can run, or the colouring failed)."""

    def __init__(self, window, result, path: str, missing: int):
        old = window.colouring.waiting_export
        if old is not None:
            old.drop()
        self.window, self.result, self.path = window, result, path
        window.colouring.waiting_export = self
        window.colouring.coloured.connect(self._on_part)
        window.colouring.idle.connect(self._on_idle)
        window.statusBar().showMessage(f"Colouring {missing:,} samples before writing {path}…")
        window.colouring.schedule()

    def drop(self) -> None:
        self.window.colouring.coloured.disconnect(self._on_part)
        self.window.colouring.idle.disconnect(self._on_idle)
        self.window.colouring.waiting_export = None

    def _on_part(self, _count: int) -> None:
        if not self.window.colouring.missing(self.result, range(len(self.result.samples))):
            self._on_idle()

    def _on_idle(self) -> None:
        from app.results.colouring import same_samples

        self.drop()
        if not same_samples(self.result, self.window.results.result()):
            self.window.statusBar().showMessage(f"Not written: another result is shown now; export {self.path} "
                                                "again", 10000)
            return
        _write_paper_json(self.window, self.window.results.result(), self.path)


def _write_paper_json(window, result, path: str):
    from engine.store.paper_json import write_paper_json

    entry = window.session.entry
    task = window.session.task if entry is not None and result.model == entry.name else None
    pieces = task.vocab.token_strings(result.query_tokens) if task is not None else None
    try:
        written = write_paper_json(result, path, query_pieces=pieces)
    except Exception as e:  # noqa: BLE001 - a failed export is a message, never a crash
        show_message(window, "Export failed", f"Could not write {path}: {e}")
        return None
    plain = sum(1 for s in result.samples if len(s.prob_diff) != len(s.pieces))
    note = f" ({plain:,} without colours: a text model's samples beyond epsilon are left plain, and all are if " \
        "the colouring failed)" if plain else ""
    if result.sampler == "search":
        note = " (without colours: the local search's samples have none, they need a decoder)"
    window.statusBar().showMessage(f"Wrote {result.candidates_done:,} candidates for the paper's viewer to "
                                   f"{written}{note}", 10000)
    return written


def export_png(window, which: str, path: str | None = None):
    result = window.results.result()
    if path is None:
        name = suggested_name(result, f"_{which}.png") if result else f"{which}.png"
        path = ask_save_path(window, f"Export {which} as PNG", name, "PNG image (*.png)")
    if not path:
        return None
    try:
        if which == "diagram":  # the whole model, not only the part scrolled into view
            written = save_image(window.diagram.render_image(), path)
        else:
            written = save_png(window.tabs.currentWidget(), path)
    except (OSError, OutputError) as e:
        show_message(window, "Export failed", str(e))
        return None
    window.statusBar().showMessage(f"Saved {written}", 10000)
    return written


# ---- the flow graph ----------------------------------------------------------------------
def _flow_name(window, suffix: str) -> str:
    entry = window.session.entry
    text = "".join(c if c.isalnum() else "_" for c in window.editor.text())[:40]
    return f"{entry.name if entry else 'model'}_flow_{text}{suffix}"


def write_atomic(path: Path, data: bytes) -> Path:
    """A reader sees the old file or the whole new one; a failure leaves nothing behind."""
    from engine.store.safefiles import atomic_write_bytes

    atomic_write_bytes(path, data)
    return path


def png_bytes(pixmap) -> bytes:
    """A QPixmap or QImage as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    if not pixmap.save(buffer, "PNG"):
        raise OSError("could not encode the image as PNG")
    buffer.close()
    return bytes(data.data())


def export_flow(window, which: str, path: str | None = None):
    """File > Export flow graph as JSON / PNG: what the diagram shows now (see FlowView.export_json)."""
    flow = window.flow
    if flow.graph is None:
        window.statusBar().showMessage("No flow graph yet: choose a model and type a valid query.", 8000)
        return None
    suffix, title, filter_text = {
        "json": (".json", "Export flow graph as JSON", "JSON (*.json)"),
        "neuronpedia": (".json", "Export flow graph for attribution-graph viewers", "Graph JSON (*.json)"),
        "png": (".png", "Export flow graph as PNG", "PNG image (*.png)"),
    }[which]
    path = path or ask_save_path(window, title, _flow_name(window, suffix), filter_text)
    if not path:
        return None
    target = Path(path)
    if target.suffix.lower() != suffix:
        target = target.with_suffix(suffix)
    try:
        if which == "json":
            data = flow.export_json().encode("utf-8")
        elif which == "neuronpedia":
            from engine.flow.neuronpedia import slug_for

            data = flow.export_neuronpedia(slug_for(target.stem),
                                           getattr(window.session.entry, "name", "model")).encode("utf-8")
        else:
            data = png_bytes(flow.image())  # the whole diagram with every edge, not the panel's controls
        written = write_atomic(target, data)
    except Exception as e:  # noqa: BLE001 - a failed export is a message, never a crash
        show_message(window, "Export failed", f"Could not write {target}: {e}")
        return None
    route = "route " if flow.controls.route_only() else ""
    what = {"json": f"{len(flow.shown_edges)} {route}edges", "neuronpedia": "graph JSON, pruned by influence",
            "png": "image"}[which]
    window.statusBar().showMessage(f"Saved the flow graph ({what}) to {written}", 10000)
    return written


def import_paper_json(window, path: str | None = None):
    """File > Import paper JSON: one of the InversionView paper's cached-generation files (its web
    viewer's format, engine/store/paper_json.py), read by the engine and then shown as a result and
    kept in the history; a file that cannot be read is a message. The JobRequest sent, or None."""
    if path is None:
        path, _ = QFileDialog.getOpenFileName(window, "Import a paper JSON file", str(start_folder(window)),
                                              "JSON (*.json)")
        remember(window, path)
    if not path:
        return None
    import numpy as np

    from app.workers.job_request import JobRequest
    from engine.store.paper_json import MAX_FILE_BYTES

    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            show_message(window, "Import failed", f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} a "
                                                  "cached-generation file may have")
            return None
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        show_message(window, "Import failed", f"{path}: cannot read it ({e.strerror or e})")
        return None
    # parsed by the engine process (a 60 MB file's json.loads held the GIL for most of a second)
    request = JobRequest("read", "", {"data": data, "name": path, "epsilon": window.options_bar.epsilon.value()})
    PendingImport(window, request)
    window.engine.run_job(request)
    return request


_IMPORTING: set = set()


class PendingImport:
    """A file being read by the engine: shown and kept in the history when it is, or a message."""

    def __init__(self, window, request):
        self.window, self.request = window, request
        window.engine.jobFinished.connect(self._done)
        window.engine.jobFailed.connect(self._failed)
        _IMPORTING.add(self)  # kept alive until answered

    def _drop(self) -> None:
        self.window.engine.jobFinished.disconnect(self._done)
        self.window.engine.jobFailed.disconnect(self._failed)
        _IMPORTING.discard(self)

    def _done(self, request, result) -> None:
        if request is self.request:
            self._drop()
            self.window.show_outside_result(result, model_key="")
            self.window.statusBar().showMessage(f"Imported {result.candidates_done:,} candidates from "
                                                f"{self.request.params['name']}", 10000)

    def _failed(self, request, message: str) -> None:
        if request is self.request:
            self._drop()
            show_message(self.window, "Import failed", message)
