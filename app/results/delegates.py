"""Painting of the results table: samples as coloured tokens, and the orange distance bar.

docs/design.md §2: each token's background is prob_diff (blue positive, red negative); the compared
token is in parentheses; hovering a token shows its own distance (position_distances). The bar
is orange, its width min(D / 0.5, 1) of the cell, fading as D grows.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QToolTip

from app.results.distance_text import distance_text
from app.results.sample_cells import ELLIPSIS, sample_text, shown_cells
from app.results.table_model import SAMPLE_ROLE, how_found
from app.style import (
    bar_color,
    bar_fraction,
    composite,
    faint_line,
    prob_diff_color,
    readable_on,
    selection_fill,
)

LEFT_MIDDLE = Qt.AlignLeft | Qt.AlignVCenter  # built once: enum arithmetic is slow in a paint loop

CELL_PAD = 3
MALFORMED_STRIKE = 1.5  # px: the line through a malformed sample's tokens


class TokenMetrics:
    """Fonts and cell sizes for drawing samples, built once per base font (painting is hot)."""

    def __init__(self, base: QFont):
        self.font = QFont("DejaVu Sans Mono")
        self.font.setStyleHint(QFont.Monospace)
        self.font.setPointSizeF(base.pointSizeF() * 1.1)
        fm = QFontMetrics(self.font)
        self.char_w = fm.horizontalAdvance("m")
        self.pad = CELL_PAD
        self.pitch = self.char_w + 2 * CELL_PAD + 1  # one token cell plus its 1 px gap
        # the same font, spaced so that each glyph lands in the middle of its cell: one drawText per run
        self.spaced = QFont(self.font)
        self.spaced.setLetterSpacing(QFont.AbsoluteSpacing, self.pitch - self.char_w)

    def cells(self, sample, left: int, top: int, height: int) -> list[QRect]:
        """One rect per token, as wide as its text (one glyph for the synthetic tasks' tokens, a
        BPE token's whole piece for text models); the compared token's has room for parentheses."""
        rects, x = [], left + CELL_PAD
        pieces = sample.pieces
        for i in range(len(sample.tokens)):
            glyphs = max(1, len(pieces[i])) if i < len(pieces) else 1
            w = (glyphs + 2 * (i == sample.compared_position)) * self.char_w + 2 * CELL_PAD
            rects.append(QRect(x, top + 2, w, height - 4))
            x += w + 1
        return rects


_metrics: dict[float, TokenMetrics] = {}


def token_metrics(base: QFont) -> TokenMetrics:
    key = base.pointSizeF()
    if key not in _metrics:
        _metrics[key] = TokenMetrics(base)
    return _metrics[key]


def token_tooltip(sample, i: int) -> str:
    d = sample.position_distances[i] if i < len(sample.position_distances) else math.nan
    pd = sample.prob_diff[i] if i < len(sample.prob_diff) else math.nan
    label = sample.labels[i] if i < len(sample.labels) else ""
    dist = "not compared (BOS/EOS/PAD)" if not math.isfinite(d) else f"D = {d:.4f}"
    mark = " (compared)" if i == sample.compared_position else ""
    diff = f"; p(token | z_q) - p(token | z_BOS) = {pd:+.3f}" if math.isfinite(pd) else ""
    bad = "" if sample.well_formed else "\nmalformed (struck through): the task's check rejects this sample"
    return f"position {i} {sample.pieces[i]!r} [{label}]{mark}: {dist}{diff}{bad}"


class CellColors:
    """The colours of one row's cells, from the view's palette: its background (base, alternate
    base, or the selection) and the ink for text on it and on each prob_diff fill composited
    over it (the palette's text where it reads, else black or white). Cached: painting is hot."""

    _cache: dict = {}

    def __init__(self, option):
        pal = option.palette
        if option.state & QStyle.State_Selected:
            background = selection_fill(pal)
        elif option.features & QStyleOptionViewItem.Alternate:
            background = pal.color(QPalette.AlternateBase)
        else:
            background = pal.color(QPalette.Base)
        text = pal.color(QPalette.Text)  # a malformed sample is struck through, not red: red means negative
        self.background, self.text = background, text
        self.ink = readable_on(background, text)
        self.line = faint_line(pal)
        self._on: dict[int, QColor] = {}  # fill rgba -> ink

    @classmethod
    def of(cls, option) -> CellColors:
        pal = option.palette
        key = (pal.cacheKey(), bool(option.state & QStyle.State_Selected),
               bool(option.features & QStyleOptionViewItem.Alternate))
        colors = cls._cache.get(key)
        if colors is None:
            if len(cls._cache) > 64:
                cls._cache.clear()
            colors = cls._cache[key] = cls(option)
        return colors

    def fill_background(self, painter, option) -> None:
        """Selected rows only: the view paints the others' base and alternate base itself."""
        if option.state & QStyle.State_Selected:
            painter.fillRect(option.rect, self.background)

    def ink_on(self, fill: QColor | None) -> QColor:
        """The ink for text on a token's prob_diff fill (None: on the row's background)."""
        if fill is None:
            return self.ink
        key = fill.rgba()
        ink = self._on.get(key)
        if ink is None:
            ink = self._on[key] = readable_on(composite(fill, self.background), self.text)
        return ink


class SampleDelegate(QStyledItemDelegate):
    def paint(self, painter, option, index) -> None:
        sample = index.data(SAMPLE_ROLE)
        if sample is None:
            return super().paint(painter, option, index)
        painter.save()
        painter.setClipRect(option.rect)  # long samples must not spill into the next column
        colors = CellColors.of(option)
        colors.fill_background(painter, option)
        tm = token_metrics(option.font)
        r = option.rect
        shown = shown_cells(tm, sample, r)  # elided in the middle when too wide: the compared token shows
        diffs, pieces, cp = sample.prob_diff, sample.pieces, sample.compared_position
        inks = {}
        for i, cell in shown.cells:
            color = prob_diff_color(diffs[i]) if i < len(diffs) else None
            if color is not None:
                painter.fillRect(cell, color)
            inks[i] = colors.ink_on(color)
        if all(len(piece) == 1 for piece in pieces):
            # runs of text of one ink, the compared token and "…" between them; the spaced font
            # puts glyph k of a run CELL_PAD into the run's k-th cell
            painter.setFont(tm.spaced)
            run: list[int] = []
            where = dict(shown.cells)
            for i in [*where, None]:
                if run and (i is None or i == cp or i != run[-1] + 1 or inks[i] != inks[run[0]]):
                    c = where[run[0]]
                    painter.setPen(inks[run[0]])
                    painter.drawText(c.left() + CELL_PAD, c.top(), r.width(), c.height(), LEFT_MIDDLE,
                                     "".join(pieces[j] for j in run if j < len(pieces)))
                    run = []
                if i is not None and i != cp:
                    run.append(i)
        else:  # BPE tokens of several characters: each in its own cell
            painter.setFont(tm.font)
            for i, cell in shown.cells:
                if i != cp and i < len(pieces):
                    painter.setPen(inks[i])
                    painter.drawText(cell, Qt.AlignCenter, pieces[i])
        painter.setFont(tm.font)
        cp_cell = dict(shown.cells).get(cp)
        if cp_cell is not None and cp < len(pieces):
            painter.setPen(inks[cp])
            painter.drawText(cp_cell, Qt.AlignCenter, f"({pieces[cp]})")
            painter.setPen(QPen(colors.ink, 1))  # the outline sits on the row's background
            painter.drawRect(cp_cell.adjusted(0, 0, -1, -1))
        painter.setPen(colors.ink)
        for gap in shown.gaps:
            painter.drawText(gap, Qt.AlignCenter, ELLIPSIS)
        if not sample.well_formed and shown.cells:  # malformed: struck through (red means negative)
            y = r.center().y()
            painter.setPen(QPen(colors.ink, MALFORMED_STRIKE))
            right = max(c.right() for c in [*shown.gaps, *(c for _, c in shown.cells)])
            painter.drawLine(shown.cells[0][1].left(), y, right, y)
        painter.restore()

    def sizeHint(self, option, index):
        size = super().sizeHint(option, index)
        sample = index.data(SAMPLE_ROLE)
        if sample is not None:
            cells = token_metrics(option.font).cells(sample, 0, 0, size.height())
            size.setWidth(cells[-1].right() + CELL_PAD if cells else size.width())
        return size

    def helpEvent(self, event, view, option, index) -> bool:
        sample = index.data(SAMPLE_ROLE)
        if sample is None or event is None:
            return super().helpEvent(event, view, option, index)
        shown = shown_cells(token_metrics(option.font), sample, option.rect)
        whole = f"\n{sample_text(sample)}" if shown.elided else ""  # what "…" stands for
        for gap in shown.gaps:
            if gap.contains(event.pos()):
                QToolTip.showText(event.globalPos(), f"The whole sample:{whole}", view, gap)
                return True
        for i, cell in shown.cells:
            if cell.contains(event.pos()):
                QToolTip.showText(event.globalPos(), token_tooltip(sample, i) + whole, view, cell)
                return True
        if sample.edits >= 0 or whole:  # beside the tokens: how the search found it, the whole sample
            text = (how_found(sample) if sample.edits >= 0 else "") + whole
            QToolTip.showText(event.globalPos(), text.strip(), view, option.rect)
            return True
        QToolTip.hideText()
        return True


class TextCellDelegate(QStyledItemDelegate):
    """Rank, multiplicity and fact, painted straight from the SampleResult.

    One Python call per cell instead of the default delegate's many data() calls: while the
    engine thread runs Python, each call back into Python may wait for the GIL, so fewer calls
    make a steadier repaint.
    """

    def __init__(self, text_of, align, parent=None):
        super().__init__(parent)
        self._text_of = text_of
        self._align = align | Qt.AlignVCenter

    def paint(self, painter, option, index) -> None:
        sample = index.data(SAMPLE_ROLE)
        if sample is None:
            return super().paint(painter, option, index)
        colors = CellColors.of(option)
        colors.fill_background(painter, option)
        painter.setPen(colors.ink)
        rect = option.rect.adjusted(4, 0, -4, 0)  # too long: "…" at the end (the cell's tooltip holds it whole)
        text = option.fontMetrics.elidedText(self._text_of(sample), Qt.ElideRight, rect.width())
        painter.drawText(rect, self._align, text)


class DistanceBarDelegate(QStyledItemDelegate):
    def paint(self, painter, option, index) -> None:
        sample = index.data(SAMPLE_ROLE)
        if sample is None:
            return super().paint(painter, option, index)
        painter.save()
        colors = CellColors.of(option)
        colors.fill_background(painter, option)
        r = option.rect.adjusted(4, 4, -4, -4)
        text_w = token_metrics(option.font).char_w * 6 + 6
        bar_area = QRectF(r.left(), r.top(), max(r.width() - text_w, 10), r.height())
        frac = bar_fraction(sample.distance)
        painter.fillRect(QRectF(bar_area.left(), bar_area.top(), bar_area.width() * frac, bar_area.height()),
                         bar_color(sample.distance))
        painter.setPen(QPen(colors.line, 1))
        painter.drawRect(bar_area)
        painter.setPen(colors.ink)
        painter.drawText(QRect(int(bar_area.right()) + 4, r.top(), text_w, r.height()),
                         LEFT_MIDDLE, distance_text(sample.distance))
        painter.restore()
