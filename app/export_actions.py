"""Saving what is on screen: samples as CSV (engine.export.write_csv) and views as PNG.

PNG only: pyqtgraph's SVG export fails with PySide6 6.12 (DESIGN.md §6), and a grab of the
widget is what the user sees anyway.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from .messages import show_message


def ask_save_path(parent: QWidget, title: str, suggested: str, filter_text: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, title, suggested, filter_text)
    return path


def suggested_name(result, suffix: str) -> str:
    site = result.site_short.replace(".", "_")
    return f"{result.model}_{site}_p{result.query_position}{suffix}"


def write_samples_csv(result, path: str) -> Path:
    """engine.export.write_csv; imported here, not at start-up, since the engine lands it with run_query."""
    from engine.export import write_csv

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
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path


def export_samples_csv(window, path: str | None = None):
    """The shown result's samples as CSV; problems become a message, never an exception."""
    result = window.results.result()
    if result is None:
        window.statusBar().showMessage("Nothing to export yet: run a query first.", 8000)
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
    except OSError as e:
        show_message(window, "Export failed", str(e))
        return None
    window.statusBar().showMessage(f"Saved {written}", 10000)
    return written
