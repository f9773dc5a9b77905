"""Under a dark palette every text, background and line of the app's views stays readable.

The application palette is set to a dark one (as Fusion with a dark system theme gives), the
widgets are built and grabbed, and contrast is measured as WCAG 2 does: at least 4.5:1 for text
against what it is drawn on, 3:1 for lines. Colours come from the palette or from app/style.py;
a grep keeps hard-coded colours out of the rest of app/.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QColor, QImage, QPalette

from app.style import contrast_ratio, luminance
from engine.query.types import QueryOptions
from tests.app.fakes import FakeEngine

TEXT = 4.5  # WCAG AA, normal text
LINE = 3.0  # WCAG AA, graphical objects
ROOT = Path(__file__).resolve().parents[2]


def dark_palette() -> QPalette:
    """A dark palette as a dark desktop theme gives Fusion: light text on dark grey."""
    pal = QPalette()
    colours = {
        QPalette.Window: (53, 53, 53), QPalette.WindowText: (230, 230, 230), QPalette.Base: (35, 35, 35),
        QPalette.AlternateBase: (45, 45, 45), QPalette.ToolTipBase: (25, 25, 25), QPalette.ToolTipText: (230, 230, 230),
        QPalette.PlaceholderText: (140, 140, 140), QPalette.Text: (230, 230, 230), QPalette.Button: (53, 53, 53),
        QPalette.ButtonText: (230, 230, 230), QPalette.BrightText: (255, 80, 80), QPalette.Link: (110, 170, 255),
        QPalette.LinkVisited: (170, 140, 255), QPalette.Highlight: (42, 130, 218),
        QPalette.HighlightedText: (255, 255, 255), QPalette.Light: (80, 80, 80), QPalette.Midlight: (66, 66, 66),
        QPalette.Mid: (45, 45, 45), QPalette.Dark: (30, 30, 30), QPalette.Shadow: (10, 10, 10),
    }
    for role, rgb in colours.items():
        pal.setColor(role, QColor(*rgb))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        pal.setColor(QPalette.Disabled, role, QColor(127, 127, 127))
    return pal


@pytest.fixture
def dark(qapp):
    """The dark palette for one test; the application's own palette back afterwards."""
    original = QPalette(qapp.palette())
    qapp.setPalette(dark_palette())
    yield qapp.palette()
    qapp.setPalette(original)


@pytest.fixture
def result(fake_models):
    inv = FakeEngine().load_inverter("fake-counting")
    return FakeEngine().run_query(inv, "Bvvzccvczvvvzvcvc|v:8", "x1.post", ":", QueryOptions(candidates=1024, seed=3))


# ---- measuring -----------------------------------------------------------------------------
def pixels(image: QImage) -> np.ndarray:
    """(height, width, 3) RGB of an image."""
    image = image.convertToFormat(QImage.Format_RGB32)
    raw = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return raw[:, :image.width(), 2::-1].astype(float)  # BGRA in memory


def _luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def ink_contrast(image: QImage, rect: QRect) -> tuple[QColor, QColor, float]:
    """In a region holding text: its background (the commonest colour), its ink (the pixel that
    differs most from it) and their contrast ratio."""
    rgb = pixels(image)[max(rect.top(), 0):rect.bottom() + 1, max(rect.left(), 0):rect.right() + 1].reshape(-1, 3)
    assert len(rgb), rect
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    bg = colours[np.argmax(counts)]
    lum, bg_lum = _luminance(rgb), _luminance(bg[None])[0]
    ratio = (np.maximum(lum, bg_lum) + 0.05) / (np.minimum(lum, bg_lum) + 0.05)
    ink = rgb[np.argmax(ratio)]
    return QColor(*map(int, bg)), QColor(*map(int, ink)), float(ratio.max())


def label_contrast(label) -> float:
    pal = label.palette()
    return contrast_ratio(pal.color(label.foregroundRole()), pal.color(label.backgroundRole()))


SPAN = re.compile(r"<span style='([^']*)'>")


def rich_text_contrasts(label) -> list[tuple[str, float]]:
    """Each coloured span of a label's rich text and the contrast of its text: against its own
    background (a swatch) or else the label's."""
    back = label.palette().color(label.backgroundRole())
    out = []
    for match in SPAN.finditer(label.text()):
        style = dict(part.split(":", 1) for part in match.group(1).replace(" ", "").split(";") if ":" in part)
        if "color" in style:
            against = QColor(style["background"]) if "background" in style else back
            out.append((match.group(0), contrast_ratio(QColor(style["color"]), against)))
    return out


def assert_label_readable(label, spans: float = TEXT) -> None:
    """The label's text on its background, and each coloured span at `spans` (text: 4.5; a
    legend's line samples, drawn as glyphs: 3)."""
    label.ensurePolished()
    ratio = label_contrast(label)
    assert ratio >= TEXT, f"{label.objectName() or label.text()[:40]!r}: {ratio:.2f}"
    for span, ratio in rich_text_contrasts(label):
        assert ratio >= spans, f"{span} in {label.text()[:60]!r}: {ratio:.2f}"


# ---- the results view ------------------------------------------------------------------------
def test_the_results_view_reads_under_a_dark_palette(qtbot, dark, result):
    from app.results.delegates import token_metrics
    from app.results.table_model import DISTANCE, FACT, RANK, SAMPLE
    from app.results.view import ResultsView

    v = ResultsView()
    qtbot.addWidget(v)
    v.resize(1000, 720)
    v.show()
    v.show_result(result)
    v.set_stale(["candidates"])
    first = next(i for i, c in enumerate(v.histogram.counts()) if c > 0)
    v.histogram.select_bin(first)  # the filter label
    v.histogram.select_bin(first)
    v.table.selectRow(1)
    qtbot.waitUntil(lambda: v.table.isVisible())
    labels = [v.title, v.summary, v.stale_label, v.legend] + ([v.preimage] if v.preimage.isVisible() else [])
    for label in labels:
        assert_label_readable(label)
    assert "<span style=" in v.title.text() and "background:" in v.legend.text()  # the spans were checked

    # the table: every token of the first rows, on its prob_diff fill or the row's background
    table = v.table
    image = table.viewport().grab().toImage()
    assert luminance(QColor(image.pixelColor(table.viewport().width() - 3, table.viewport().height() - 3))) < 0.05
    model = table.model()
    worst = 21.0
    for row in range(4):  # row 1 is selected
        sample = model.sample(row)
        cell = table.visualRect(model.index(row, SAMPLE))
        tm = token_metrics(table.font())
        for rect in tm.cells(sample, cell.left(), cell.top(), cell.height())[1:]:  # not BOS: an empty fill
            if rect.right() > cell.right():
                break
            worst = min(worst, ink_contrast(image, rect.adjusted(1, 1, -1, -1))[2])
        for col in (RANK, FACT, DISTANCE):
            r = table.visualRect(model.index(row, col))
            if col == DISTANCE:
                r.setLeft(r.right() - tm.char_w * 6 - 6)  # the number, right of the bar
            worst = min(worst, ink_contrast(image, r.adjusted(2, 3, -2, -3))[2])
    assert worst >= TEXT, worst

    # the epsilon label, on its backdrop over the table
    k = model.in_epsilon_rows()
    table.scrollTo(model.index(k - 1, 0))
    image = table.viewport().grab().toImage()
    y = table.rowViewportPosition(k - 1) + table.rowHeight(k - 1) - 1
    width = table.viewport().width()
    assert 14 <= y < table.viewport().height()
    bg, ink, ratio = ink_contrast(image, QRect(width - 50, y - 13, 44, 11))
    assert ratio >= TEXT, (bg.name(), ink.name(), ratio)


def test_the_histogram_is_dark_with_readable_axes(qtbot, dark, result):
    from app.results.histogram import DistanceHistogram

    h = DistanceHistogram()
    qtbot.addWidget(h)
    h.resize(600, 200)
    h.show()
    h.set_data([s.distance for s in result.samples], [s.multiplicity for s in result.samples], 0.1)
    background = h.backgroundBrush().color()
    assert luminance(background) < 0.05
    for name in ("left", "bottom"):
        axis = h.getPlotItem().getAxis(name)
        assert contrast_ratio(axis.textPen().color(), background) >= TEXT
        assert contrast_ratio(axis.pen().color(), background) >= LINE
    assert contrast_ratio(h._eps_line.label.color, background) >= TEXT  # the epsilon label
    image = h.grab().toImage()
    axis = h.getPlotItem().getAxis("left")
    rect = h.mapFromScene(axis.sceneBoundingRect()).boundingRect()
    _, _, ratio = ink_contrast(image, rect.adjusted(2, 2, -8, -2))  # the tick labels and the axis label
    assert ratio >= TEXT


def test_the_training_curve_is_dark_with_readable_axes_and_lines(qtbot, dark):
    from app.training.curve import TrainingCurve

    c = TrainingCurve()
    qtbot.addWidget(c)
    c.add_loss(60, 2.0)
    c.add_loss(120, 1.5)
    c.add_quality(120, {"x1.post": 0.4}, 0.9)
    c.flush()
    background = c.plots.backgroundBrush().color()
    assert luminance(background) < 0.05
    for plot in (c.loss_plot, c.quality_plot):
        for name in ("left", "bottom"):
            assert contrast_ratio(plot.getAxis(name).textPen().color(), background) >= TEXT
    for name, pen in c.pens.items():
        assert contrast_ratio(pen.color(), background) >= LINE, name
    assert luminance(c.legend.palette().color(c.legend.backgroundRole())) < 0.05  # as dark as the plots
    assert_label_readable(c.legend, spans=LINE)  # its spans are the lines' samples (━━), the names are text


# ---- the diagram -----------------------------------------------------------------------------
def test_the_diagram_is_dark_with_light_labels(qtbot, dark):
    from app.diagram.layout import DiagramOverlay
    from app.diagram.view import DiagramPanel
    from engine.probed.model import PAPER_CONFIGS
    from engine.probed.sites import paper_sites
    from engine.tasks import get_task

    cfg, task = PAPER_CONFIGS["counting"], get_task("counting")
    ids = task.parse_query(task.examples()[0])
    panel = DiagramPanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    d = panel.view
    d.set_model(cfg.n_layers, cfg.n_heads, [s.short for s in paper_sites(cfg)])
    d.set_tokens([task.vocab.chars[i] for i in ids], task.position_labels(ids))
    d.set_overlay(DiagramOverlay(labels={("x1.post", 3): "z", ("a1.0", 3): "v"},
                                 colors={("x1.post", 3): "#006837"},  # the darkest green of the target scale
                                 edges=[(("x0.pre", 2), ("x1.post", 3), 0.8)]))
    d.finish_overlay()
    d.set_selection("x1.post", 5)
    panel.show()
    qtbot.waitExposed(panel)

    background = d.backgroundBrush().color()
    assert luminance(background) < 0.05  # the scene is dark
    for key in (("x1.post", 3), ("a1.0", 3)):
        ink = d.node(*key).label_item.brush().color()
        assert luminance(ink) > 0.5 and contrast_ratio(ink, background) >= TEXT, key
    trained, untrained = d.node("x1.post", 2), d.node("attn0", 2)
    assert contrast_ratio(trained.pen().color(), background) >= LINE
    assert contrast_ratio(untrained.pen().color(), background) >= LINE
    assert contrast_ratio(d.edge_items()[0].pen().color(), background) >= LINE  # the violet edges
    label = d._columns[2].label
    for text in (label._token, label._label):
        assert contrast_ratio(text.brush().color(), background) >= TEXT

    # measured on screen: a token and its position label, and one inside the selected column's band
    image = d.viewport().grab().toImage()
    for pos in (2, 5):
        rect = d.mapFromScene(d._columns[pos].label.sceneBoundingRect()).boundingRect()
        bg, ink, ratio = ink_contrast(image, rect.adjusted(2, 2, -2, -2))
        assert luminance(bg) < 0.1 and ratio >= TEXT, (pos, bg.name(), ink.name(), ratio)
    # a readout label, beside its node on the background
    item = d.node("x1.post", 3).label_item
    rect = d.mapFromScene(item.sceneBoundingRect()).boundingRect()
    assert ink_contrast(image, rect)[2] >= TEXT
    assert_label_readable(panel.legend)


def test_the_flow_controls_read_under_a_dark_palette(qtbot, dark):
    from app.flow.controls import FlowControls, TargetLegend

    f = FlowControls()
    qtbot.addWidget(f)
    f.show()
    for label in (f.lead, f.value_label, f.status):
        f.set_status("graph of 12 positions")
        assert_label_readable(label)
    f.set_status("'q' is not a token of this model", error=True)
    assert_label_readable(f.status)

    legend = TargetLegend()
    qtbot.addWidget(legend)
    legend.show()
    image = legend.grab().toImage()
    for text_box in (QRectF(0, 0, 74, 18), QRectF(250, 0, 50, 18)):  # "P(target) 0" and "weight"
        bg, ink, ratio = ink_contrast(image, text_box.toRect())
        assert luminance(bg) < 0.1 and ratio >= TEXT, (bg.name(), ink.name(), ratio)


def test_secondary_and_error_text_follow_the_palette(qtbot, dark):
    from app.style import error_text, muted_text, selected_band, selection_fill

    window, base, text = (dark.color(r) for r in (QPalette.Window, QPalette.Base, QPalette.Text))
    for colour in (muted_text(), error_text()):
        assert min(contrast_ratio(colour, window), contrast_ratio(colour, base)) >= TEXT, colour.name()
    assert error_text().red() > error_text().green() + 60  # still red
    assert contrast_ratio(text, selection_fill()) >= TEXT
    band = selected_band()
    from app.style import composite

    assert contrast_ratio(text, composite(band, base)) >= 7


def test_switching_to_a_dark_palette_recolours_what_is_already_built(qtbot, qapp):
    """The system turns dark while the app runs: the diagram draws itself again, the histogram
    restyles, the results' secondary text follows."""
    from app.diagram.view import ModelDiagram
    from app.results.histogram import DistanceHistogram
    from app.results.view import ResultsView

    d, h, v = ModelDiagram(), DistanceHistogram(), ResultsView()
    for w in (d, h, v):
        qtbot.addWidget(w)
        w.show()  # hidden widgets take a new palette only when shown
    d.set_model(2, 1, None)
    d.set_tokens(["B", "a", "E"], ["B", "a", "E"])
    assert luminance(d.backgroundBrush().color()) > 0.5  # built light
    original = QPalette(qapp.palette())
    try:
        qapp.setPalette(dark_palette())
        qtbot.waitUntil(lambda: luminance(d.backgroundBrush().color()) < 0.05)  # PaletteChange is posted
        background = d.backgroundBrush().color()
        assert luminance(h.backgroundBrush().color()) < 0.05
        assert contrast_ratio(d._columns[1].label._token.brush().color(), background) >= TEXT
        assert contrast_ratio(d.node("x1.post", 1).pen().color(), background) >= LINE
        assert_label_readable(v.legend)
    finally:
        qapp.setPalette(original)


# ---- no hard-coded colours outside app/style.py ------------------------------------------------

# Data colours that carry meaning and stay as they are whatever the palette, with why.
ALLOWED = {
    # tab20, one colour per trained site: lines told apart from each other, light and dark shades
    # both drawn on the plot (the average, the line to read, is the palette's text colour)
    "app/training/curve.py": {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                              "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
                              "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"},
    # the information map: one hue per feature its nodes share, and grey for "nothing shared"; node
    # fills on the scene, their labels drawn beside them in the scene's own text colour
    "app/explain/map_view.py": {"#e78ac3", "#fc8d62", "#66c2a5", "#ffd92f", "#a6d854", "#e5c494", "#8da0cb",
                                "#377eb8", "#984ea3", "#a65628", "#17becf", "#bcbd22", "#e31a1c", "#4daf4a",
                                "#ff7f00", "#7f7f7f", "#d1d5db"},
}

PATTERNS = (
    re.compile(r"#(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b"),  # hex colours
    re.compile(r"QColor\(\s*(?:[\"']|\d)"),  # QColor("...") / QColor(255, ...) literals
    re.compile(r"\bQt\.(?:white|black|gray|darkGray|lightGray|red|green|blue|yellow|cyan|magenta)\b"),
    re.compile(r"\b(?:color|background|foreground)\s*[:=]\s*[\"']?(?:white|black|w|k)\b"),  # CSS / pyqtgraph names
    re.compile(r"\brgba?\(\s*\d"),  # CSS rgb()
    re.compile(r"\b(?:MUTED|ERROR)\b"),  # the fixed light-palette text colours of app/style.py
)


def test_no_hard_coded_colours_outside_the_style_module():
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "app/style.py":
            continue
        allowed = ALLOWED.get(rel, set())
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            hits = [m.group(0) for pattern in PATTERNS for m in pattern.finditer(line)]
            if any(hit.lower() not in allowed for hit in hits):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "hard-coded colours (use the palette functions of app/style.py):\n" + "\n".join(found)
