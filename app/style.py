"""The app's colours in one place, with the display rules of docs/design.md §2 that use them.

Two kinds of colour. Data colours carry meaning and stay fixed whatever the theme: the
prob_diff blue/red, the orange distance bar, the epsilon amber, the flow graph's violet edges,
the target-probability green scale. Everything else that is text, background or line on a
widget comes from the application's palette, through the functions below (muted_text,
error_text, backdrop, outline, ...), so a dark system palette stays readable; text drawn on a
data colour is black or white by the fill's luminance (ink_on, readable_on). Contrast is
measured as WCAG 2 does (contrast_ratio): 4.5 for text, 3 for lines.
"""
from __future__ import annotations

import math

from PySide6.QtGui import QColor, QGuiApplication, QPalette

POSITIVE = (33, 102, 172)  # prob_diff > 0: the decoder likes this token more given z_q than z_BOS
NEGATIVE = (178, 24, 43)  # prob_diff < 0
BAR = (255, 140, 0)  # the orange distance bar
SELECTED = QColor("#2563eb")  # selected diagram node / token
SELECTED_BAND = QColor(255, 236, 170, 150)  # the selected token's column (light palettes: see selected_band)
UNTRAINED = QColor("#9ca3af")  # outline of sites the decoder was not trained on (see neutral())
DIVIDER = QColor("#d97706")  # the epsilon line in the table and histogram
# the local search's flip test per query token (app/query/token_strip.py, the results' flip line)
MUST_KEEP = (190, 24, 93)  # crimson: changing the token left epsilon (nearly) every time
CAN_CHANGE = (13, 148, 136)  # teal: changed often and stayed within epsilon
# Fixed colours for a light palette, kept for the modules not yet moved onto the palette
# functions below (error_css(), muted_css()): new code should not use them.
ERROR = "#b91c1c"
MUTED = "#6b7280"

TEXT_CONTRAST = 4.5  # WCAG AA, normal text
LINE_CONTRAST = 3.0  # WCAG AA, graphical objects


# ---- measuring and mixing colours ---------------------------------------------------------
def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def luminance(color: QColor) -> float:
    """WCAG 2 relative luminance of an opaque colour: 0 black, 1 white."""
    return 0.2126 * _linear(color.redF()) + 0.7152 * _linear(color.greenF()) + 0.0722 * _linear(color.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two opaque colours, from 1 (same) to 21 (black on white)."""
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def blend(a: QColor, b: QColor, t: float) -> QColor:
    """a moved a share t of the way toward b (opaque)."""
    return QColor(*(round(x + (y - x) * t) for x, y in
                    ((a.red(), b.red()), (a.green(), b.green()), (a.blue(), b.blue()))))


def composite(top: QColor, bottom: QColor) -> QColor:
    """What a translucent colour looks like painted on an opaque one."""
    return blend(bottom, top, top.alphaF())


def legible(color: QColor, backgrounds, ratio: float = TEXT_CONTRAST) -> QColor:
    """color, its hue and saturation kept, made lighter or darker until it has at least `ratio`
    contrast against every background (one QColor or several); unchanged when it already has."""
    backgrounds = [backgrounds] if isinstance(backgrounds, QColor) else list(backgrounds)

    def worst(c: QColor) -> float:
        return min(contrast_ratio(c, bg) for bg in backgrounds)

    if worst(color) >= ratio:
        return QColor(color)
    # lighter against dark backgrounds, darker against light ones: whichever end reads better
    up = worst(QColor(255, 255, 255)) >= worst(QColor(0, 0, 0))
    h, s, lightness, _ = color.getHslF()
    h = max(h, 0.0)  # -1 for greys
    best = QColor(color)
    for k in range(1, 41):
        target = lightness + (1.0 - lightness if up else -lightness) * k / 40
        best = QColor.fromHslF(h, s, min(max(target, 0.0), 1.0))
        if worst(best) >= ratio:
            break
    return best


def ink_on(fill: QColor) -> QColor:
    """Black or white, whichever reads better on an opaque fill."""
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    return black if contrast_ratio(black, fill) >= contrast_ratio(white, fill) else white


def readable_on(background: QColor, preferred: QColor, ratio: float = TEXT_CONTRAST) -> QColor:
    """preferred when it reads on background, else black or white (ink_on)."""
    return preferred if contrast_ratio(preferred, background) >= ratio else ink_on(background)


def css(color: QColor) -> str:
    """A colour for a style sheet or rich text (#rrggbb)."""
    return color.name()


# ---- colours from the palette -------------------------------------------------------------
def palette(source=None) -> QPalette:
    """source: a QPalette, a widget (its palette) or None (the application's palette)."""
    if source is None:
        return QGuiApplication.palette()
    return source if isinstance(source, QPalette) else source.palette()


def _surfaces(pal: QPalette) -> list[QColor]:
    """The backgrounds widget text lands on: the window and the input/view base."""
    return [pal.color(QPalette.Window), pal.color(QPalette.Base)]


def text_color(source=None) -> QColor:
    return palette(source).color(QPalette.WindowText)


def muted_text(source=None) -> QColor:
    """Secondary text: the window text blended toward the window, as far as stays readable on
    both the window and the base (4.5:1)."""
    pal = palette(source)
    text, window = pal.color(QPalette.WindowText), pal.color(QPalette.Window)
    for t in (0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05):
        color = blend(text, window, t)
        if min(contrast_ratio(color, bg) for bg in _surfaces(pal)) >= TEXT_CONTRAST:
            return color
    return text


def error_text(source=None) -> QColor:
    """A red that reads on the palette's window and base: dark red on light, light red on dark."""
    return legible(QColor(ERROR), _surfaces(palette(source)))


def muted_css(source=None) -> str:
    return css(muted_text(source))


def error_css(source=None) -> str:
    return css(error_text(source))


def scene_background(source=None) -> QColor:
    """Background of drawing surfaces (the diagram, plots): the palette's base."""
    return palette(source).color(QPalette.Base)


def backdrop(source=None, alpha: int = 220) -> QColor:
    """A translucent panel behind text drawn over a view (the epsilon label, pinned row names)."""
    color = QColor(palette(source).color(QPalette.Base))
    color.setAlpha(alpha)
    return color


def outline(source=None) -> QColor:
    """Strong lines on the base (node outlines, axes): text blended a little toward the base."""
    pal = palette(source)
    return blend(pal.color(QPalette.Text), pal.color(QPalette.Base), 0.2)


def neutral(source=None) -> QColor:
    """A grey halfway between text and base: dashed outlines, secondary lines, inactive bars.
    Kept at 3:1 against the base (a line must still be seen)."""
    pal = palette(source)
    base = pal.color(QPalette.Base)
    return legible(blend(pal.color(QPalette.Text), base, 0.5), base, LINE_CONTRAST)


def faint_line(source=None) -> QColor:
    """Hairlines that only structure (wires, cell borders): text blended far toward the base."""
    pal = palette(source)
    return blend(pal.color(QPalette.Text), pal.color(QPalette.Base), 0.75)


def node_fill(source=None) -> QColor:
    return palette(source).color(QPalette.Base)


def resid_fill(source=None) -> QColor:
    """Residual-stream nodes: the base tinted a little toward the text."""
    pal = palette(source)
    return blend(pal.color(QPalette.Base), pal.color(QPalette.Text), 0.06)


def _faint(color: QColor, over: QColor, text: QColor, alpha: int, ratio: float = 7.0) -> QColor:
    """color at `alpha`, made more transparent until text on it over `over` keeps `ratio`."""
    c = QColor(color)
    for a in range(alpha, 19, -10):
        c.setAlpha(a)
        if contrast_ratio(text, composite(c, over)) >= ratio:
            break
    return c


def selected_band(source=None) -> QColor:
    """The selected token's column: a pale yellow, as translucent as the text on it needs."""
    pal = palette(source)
    return _faint(SELECTED_BAND, pal.color(QPalette.Base), pal.color(QPalette.Text), SELECTED_BAND.alpha())


def selection_fill(source=None) -> QColor:
    """An opaque selected-row background the palette's text reads on."""
    pal = palette(source)
    base, text = pal.color(QPalette.Base), pal.color(QPalette.Text)
    return composite(_faint(pal.color(QPalette.Highlight), base, text, 100), base)


def data_line(rgb, source=None) -> QColor:
    """A data colour (e.g. the violet flow edges) drawn as a line on the base: its hue kept,
    lightened or darkened only as far as 3:1 needs."""
    return legible(QColor(*rgb), scene_background(source), LINE_CONTRAST)


def swatch_html(rgb, text: str) -> str:
    """A word on a data colour, for rich text: black or white by the fill's luminance."""
    fill = QColor(*rgb)
    return f"<span style='background:{css(fill)}; color:{css(ink_on(fill))}'>&nbsp;{text}&nbsp;</span>"


def style_plot(widget, *plots, source=None) -> None:
    """A pyqtgraph widget's background, axes and text from the palette (call at construction).
    plots: its PlotItems (a PlotWidget's own when none are given)."""
    pal = palette(source if source is not None else widget)
    widget.setBackground(scene_background(pal))
    text, line = pal.color(QPalette.Text), outline(pal)
    for plot in plots or (widget.getPlotItem(),):
        for name in ("left", "bottom", "top", "right"):
            axis = plot.getAxis(name)
            axis.setPen(line)
            axis.setTextPen(text)

BAR_FULL_AT = 0.5  # bar width is min(D / 0.5, 1) of the cell


_LEVELS = 50  # prob_diff colours are looked up, not built, while painting thousands of tokens
_SHADES = {sign: [QColor(*(POSITIVE if sign > 0 else NEGATIVE), int(40 + 180 * k / _LEVELS))
                  for k in range(_LEVELS + 1)] for sign in (1, -1)}


def prob_diff_color(diff: float) -> QColor | None:
    """Token background: blue when positive, red when negative, stronger with |diff|; None near 0."""
    if diff is None or not math.isfinite(diff) or abs(diff) < 0.01:
        return None
    level = round(min(1.0, abs(diff) / 0.5) * _LEVELS)
    return _SHADES[1 if diff > 0 else -1][level]


def bar_fraction(distance: float) -> float:
    if not math.isfinite(distance):
        return 1.0
    return min(max(distance, 0.0) / BAR_FULL_AT, 1.0)


def bar_color(distance: float) -> QColor:
    """Orange, fading as the distance grows (fully opaque at 0, faint at BAR_FULL_AT and beyond)."""
    return QColor(*BAR, int(255 - 185 * bar_fraction(distance)))


# The logit lens's probability of the target token, on residual nodes of the flow graph: a
# sequential yellow-to-green scale (ColorBrewer YlGn), distinct from the selection blue, the
# prob_diff blue/red and the violet flow edges. Pale = the target is not read here yet.
TARGET_SCALE = ((0.0, (255, 255, 204)), (0.25, (194, 230, 153)), (0.5, (120, 198, 121)),
                (0.75, (49, 163, 84)), (1.0, (0, 104, 55)))
FLOW_EDGE = (109, 40, 217)  # violet: contribution edges and the attention heatmap
# the attention heatmap's scale, 0 to 1: white to the edges' violet (a data scale, on any palette)
ATTENTION_SCALE = ((255, 255, 255), FLOW_EDGE)


def target_prob_rgb(p: float) -> tuple[int, int, int]:
    p = min(max(float(p), 0.0), 1.0) if math.isfinite(p) else 0.0
    for (p0, c0), (p1, c1) in zip(TARGET_SCALE, TARGET_SCALE[1:]):
        if p <= p1:
            k = (p - p0) / (p1 - p0)
            return tuple(round(a + (b - a) * k) for a, b in zip(c0, c1))
    return TARGET_SCALE[-1][1]


def target_prob_hex(p: float) -> str:
    r, g, b = target_prob_rgb(p)
    return f"#{r:02x}{g:02x}{b:02x}"
