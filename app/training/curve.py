"""A decoder's training curves: loss (EMA) and the in-epsilon rate against training minutes.

The Train decoder dialog feeds it live points; a finished model's record (config.json,
`decoder.training.history` and `.quality`) draws the same picture. As a script it renders a
model folder's curves to a PNG offscreen, for model cards and the README:

    python -m app.training_curve models/counting --png docs/counting-training.png

Points arrive up to ten times a second; they are stored at once and drawn at most every
REDRAW_MS, so a long run never makes the dialog sluggish.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.style import SELECTED, css, data_line, muted_css, neutral, scene_background, style_plot, text_color

REDRAW_MS = 200
NO_QUALITY_NOTE = ("This record has no in-training quality checks (trained before they were recorded): "
                   "only the loss curve is shown.")


# a qualitative palette (matplotlib's tab20 without its greys, dark shades first): neighbouring
# sites get clearly different colours, and grey stays the well-formed line's
SITE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
               "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def site_pen(index: int):
    """A thin line per site: the average stays the line to read."""
    color = QColor(SITE_COLORS[index % len(SITE_COLORS)])
    color.setAlpha(190)
    return pg.mkPen(color, width=1)


def curve_pens(source=None) -> dict:
    """The loss, average and well-formed lines, from the palette: the average is drawn in the
    text colour (it is the line to read), well-formed in a neutral grey, the loss in the selection
    blue made as light or dark as 3:1 on the plot's background needs."""
    return {"loss": pg.mkPen(data_line(SELECTED.getRgb()[:3], source), width=2),
            "average": pg.mkPen(text_color(source), width=2.5),
            "well-formed": pg.mkPen(neutral(source), width=1.5, style=Qt.DashLine)}


@dataclass
class TrainingRecord:
    """What a finished (or resumed) decoder's training left behind, as plain lists."""
    title: str = ""
    history: list = field(default_factory=list)  # [step, seconds, loss EMA] every 100 steps
    quality: list = field(default_factory=list)  # dicts: step, seconds, pairs, rates {site: rate}, well_formed


def read_record(folder: Path) -> TrainingRecord:
    """The decoder training record in a model folder's record (inversionview.json); StoreError when there is none."""
    from engine.errors import StoreError
    from engine.store.folders import read_config, record_path

    config = read_config(Path(folder))
    decoder = config.get("decoder") or {}
    training = decoder.get("training") or {}
    if not training.get("history") and not training.get("quality"):
        raise StoreError(f"{record_path(Path(folder))}: no decoder training record (train a decoder first)")
    size = decoder.get("config") or {}
    parts = []
    if size.get("d_model"):
        parts.append(f"d_model {size['d_model']}, {size.get('n_layers', '?')} layers")
    if training.get("seconds"):
        parts.append(f"{training['seconds'] / 60:.1f} training minutes")
    if training.get("pairs"):
        parts.append(f"{training['pairs']:,} pairs")
    title = f"{config.get('name', Path(folder).name)}: decoder training" + (f" ({', '.join(parts)})" if parts else "")
    return TrainingRecord(title, list(training.get("history") or []), list(training.get("quality") or []))


class TrainingCurve(QWidget):
    """Two plots side by side (loss; in-epsilon rate with a legend) and a note line below."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel()
        self.title.setTextFormat(Qt.PlainText)
        self.title.setStyleSheet("font-weight: 600;")
        self.title.hide()
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(220)
        self.loss_plot = self.plots.addPlot(row=0, col=0)
        self.quality_plot = self.plots.addPlot(row=0, col=1)
        self._quality_shown = True
        self.legend = QLabel()  # a Qt label: pyqtgraph's legend stretches to the row's height in a layout
        self.legend.setTextFormat(Qt.RichText)
        self.legend.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.legend.setMinimumWidth(90)
        self.legend.setStyleSheet("font-size: 8pt; padding: 24px 6px 0 4px; "
                                  f"background: {css(scene_background(self))};")  # beside the plots: their colour
        self.pens = curve_pens(self)
        style_plot(self.plots, self.loss_plot, self.quality_plot, source=self)
        title_color = css(text_color(self))
        for plot, label in ((self.loss_plot, "loss (EMA)"), (self.quality_plot, "in-ε rate")):
            plot.setLabel("bottom", "training minutes")
            plot.setLabel("left", label)
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(46)
        self.loss_plot.setTitle("loss", size="9pt", color=title_color)
        self.quality_plot.setTitle("quality checks (training-split queries)", size="9pt", color=title_color)
        self.quality_plot.setYRange(0, 1, padding=0.02)
        self.quality_plot.getViewBox().setLimits(yMin=-0.05, yMax=1.05)
        self.loss_curve = self.loss_plot.plot(pen=self.pens["loss"])
        self.loss_curve.setDownsampling(auto=True, method="peak")
        self.loss_curve.setClipToView(True)
        self.average_curve = self.quality_plot.plot(pen=self.pens["average"], symbol="o", symbolSize=5,
                                                    symbolBrush=self.pens["average"].color(), symbolPen=None)
        self.well_formed_curve = self.quality_plot.plot(pen=self.pens["well-formed"])
        self.site_curves: dict[str, pg.PlotDataItem] = {}
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {muted_css(self)};")
        self.note.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.plots, 1)
        row.addWidget(self.legend)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addLayout(row, 1)
        lay.addWidget(self.note)
        self._loss: list[tuple[float, float]] = []  # (minutes, loss)
        self._quality: list[tuple[float, float, float, dict]] = []  # (minutes, average, well_formed, rates)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.flush)
        self.setToolTip("Loss: the training loss, smoothed. In-ε rate: the share of decoder samples whose "
                        "activation lands within ε of the query's (thick: average over sites; thin: each site).")

    # ---- data in ------------------------------------------------------------------------
    def clear(self) -> None:
        self._loss.clear()
        self._quality.clear()
        for curve in self.site_curves.values():
            self.quality_plot.removeItem(curve)
        self.site_curves.clear()
        self.set_note("")
        self._show_quality(True)
        self.flush()

    def add_loss(self, seconds: float, loss: float) -> None:
        if np.isfinite(loss):
            self._loss.append((seconds / 60.0, float(loss)))
            self._schedule()

    def add_quality(self, seconds: float, rates: dict, well_formed: float) -> None:
        average = float(np.mean(list(rates.values()))) if rates else 0.0
        self._quality.append((seconds / 60.0, average, float(well_formed), dict(rates)))
        self.set_note("")
        self._schedule()

    def set_record(self, record: TrainingRecord) -> None:
        """Replace what is drawn by a recorded training run (a finished model or a checkpoint)."""
        self.clear()
        self.set_title(record.title)
        for _step, seconds, loss in record.history:
            self._loss.append((seconds / 60.0, float(loss)))
        for q in record.quality:
            self.add_quality(q["seconds"], q.get("rates") or {}, q.get("well_formed", 0.0))
        if record.history and not record.quality:
            self.set_note(NO_QUALITY_NOTE)
            self._show_quality(False)
        self.flush()

    def _show_quality(self, shown: bool) -> None:
        """The quality plot and its legend, or (an old record without checks) the loss plot alone."""
        if shown == self._quality_shown:
            return
        self._quality_shown = shown
        if shown:
            self.plots.addItem(self.quality_plot, row=0, col=1)
        else:
            self.plots.removeItem(self.quality_plot)
        self.legend.setVisible(shown)

    def set_title(self, text: str) -> None:
        self.title.setText(text)
        self.title.setVisible(bool(text))

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    # ---- drawing --------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Draw every point stored so far (the timer calls this; tests and the PNG script may too)."""
        self._timer.stop()
        loss = np.array(self._loss, dtype=float).reshape(-1, 2)
        self.loss_curve.setData(loss[:, 0], loss[:, 1])
        minutes = np.array([q[0] for q in self._quality], dtype=float)
        self.average_curve.setData(minutes, np.array([q[1] for q in self._quality], dtype=float))
        self.well_formed_curve.setData(minutes, np.array([q[2] for q in self._quality], dtype=float))
        names = list(dict.fromkeys(name for q in self._quality for name in q[3]))
        for i, name in enumerate(names):
            curve = self.site_curves.get(name)
            if curve is None:
                curve = self.quality_plot.plot(pen=site_pen(i))
                curve.setZValue(-1)  # under the average
                self.site_curves[name] = curve
            xs = [q[0] for q in self._quality if name in q[3]]
            ys = [q[3][name] for q in self._quality if name in q[3]]
            curve.setData(np.array(xs, dtype=float), np.array(ys, dtype=float))
        self._update_legend()

    def _update_legend(self) -> None:
        rows = [(self.pens["average"], "average", "━━"), (self.pens["well-formed"], "well-formed", "╍╍")]
        rows += [(curve.opts["pen"], name, "──") for name, curve in self.site_curves.items()]
        last = {"average": self._quality[-1][1], "well-formed": self._quality[-1][2],
                **self._quality[-1][3]} if self._quality else {}
        lines = []
        for pen, name, mark in rows:
            value = last.get(name)
            value = f" {value:.2f}" if value is not None else ""
            lines.append(f"<span style='color:{pen.color().name()}'>{mark}</span>&nbsp;{name}{value}")
        self.legend.setText("<br>".join(lines))

    def loss_points(self) -> int:
        """How many loss points are drawn (not just stored)."""
        x, _ = self.loss_curve.getData()
        return 0 if x is None else len(x)

    def quality_points(self) -> int:
        x, _ = self.average_curve.getData()
        return 0 if x is None else len(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.training_curve",
                                     description="Show (or save as PNG) a model's decoder training curves.")
    parser.add_argument("folder", help="a model folder (with a decoder training record)")
    parser.add_argument("--png", help="write the curves to this PNG (offscreen) instead of opening a window")
    parser.add_argument("--size", default="1100x420", help="PNG size in pixels, WIDTHxHEIGHT (default 1100x420)")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size {args.size!r} is not WIDTHxHEIGHT, e.g. 1100x420", file=sys.stderr)
        return 2
    if args.png:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from engine.errors import StoreError

    try:
        record = read_record(Path(args.folder))
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication([])
    widget = TrainingCurve()
    widget.setStyleSheet(f"background: {css(scene_background(widget))};")  # one surface, as the plots
    widget.layout().setContentsMargins(10, 8, 10, 8)
    widget.set_record(record)
    widget.resize(width, height)
    if not args.png:
        widget.setWindowTitle(record.title)
        widget.show()
        return app.exec()
    widget.show()
    app.processEvents()
    widget.flush()
    app.processEvents()
    from app.results.export import save_image

    try:
        path = save_image(widget.grab(), args.png)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
