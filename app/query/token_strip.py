"""The query as a strip of clickable tokens: index above, token, position label below.

Painted by hand rather than built from buttons so a 33-token query stays one cheap widget and
invalid characters can be flagged in place. After a local search, a bar under each token gives
its flip test (engine/explain/flips.py): crimson "must keep", teal "can change", a faint line
"too few changes"; the tooltip has the counts.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from app.style import (
    CAN_CHANGE,
    LINE_CONTRAST,
    MUST_KEEP,
    SELECTED,
    composite,
    error_text,
    faint_line,
    legible,
    muted_text,
    selected_band,
    text_color,
)

PAD = 6
FLIP_BAR = 4  # the flip test's bar under a token, in pixels
FLIP_COLOURS = {"must keep": MUST_KEEP, "can change": CAN_CHANGE}


class TokenStrip(QWidget):
    positionClicked = Signal(int)
    keepToggled = Signal(int)  # right-click: the local search keeps this token (or no longer does)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._chars: list[str] = []
        self._labels: list[str] = []
        self._bad: set[int] = set()
        self._selected = -1
        self._live = True  # False while the query is invalid: tokens shown, not clickable
        self._token_font = QFont("DejaVu Sans Mono")
        self._token_font.setStyleHint(QFont.Monospace)
        self._token_font.setPointSizeF(self.font().pointSizeF() * 1.35)
        self._small_font = QFont(self.font())
        self._small_font.setPointSizeF(self.font().pointSizeF() * 0.8)
        self._rects: list[QRect] = []
        self._flips: list | None = None  # FlipReadings, one per token, of the local search shown
        self._kept: set[int] = set()  # positions the local search never changes (QueryOptions.keep)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setFocusPolicy(Qt.StrongFocus)  # Left / Right move the chosen position
        self.setToolTip("Click a token (or use Left / Right) to choose the position whose activation is inverted;\n"
                        "right-click a token to keep it: the local search never changes a kept token")

    # ---- content ----------------------------------------------------------------------
    def set_tokens(self, chars: list[str], labels: list[str], bad: set[int] | None = None, live: bool = True):
        if list(chars) != self._chars:
            self._flips = None  # another query: the shown search's bars were about the one before
        self._chars, self._labels = list(chars), list(labels)
        self._bad, self._live = set(bad or ()), live
        self._layout()
        self.updateGeometry()
        self.update()

    def set_flips(self, readings) -> None:
        """The flip test per query token (FlipReading: verdict, changed, within), or None: no bars."""
        readings = list(readings) if readings is not None else None
        self._flips = readings if readings is not None and len(readings) == len(self._chars) else None
        self.update()

    def flip_verdicts(self) -> list[str]:
        """What the bars show, per token ('' where none is shown)."""
        return [r.verdict for r in self._flips] if self._flips else [""] * len(self._chars)

    def flip_tooltip(self, index: int) -> str:
        if not self._flips or not 0 <= index < len(self._flips):
            return ""
        r = self._flips[index]
        if r.verdict == "after the position":
            return f"token {index} '{self._chars[index]}': after the compared position, not searched"
        return (f"token {index} '{self._chars[index]}': {r.verdict} (the local search changed it {r.changed:,} "
                f"times, still within ε {r.within:,} times)")

    def set_kept(self, kept) -> None:
        self._kept = set(kept)
        self.update()

    def kept(self) -> set[int]:
        return set(self._kept)

    def set_selected(self, index: int) -> None:
        self._selected = index
        self.update()

    def selected(self) -> int:
        return self._selected

    def cell_rect(self, index: int) -> QRect:
        return QRect(self._rects[index])

    def count(self) -> int:
        return len(self._chars)

    # ---- geometry -----------------------------------------------------------------------
    def _layout(self) -> None:
        tfm, sfm = QFontMetrics(self._token_font), QFontMetrics(self._small_font)
        h = self._height()
        x = 2
        self._rects = []
        for ch, lab in zip(self._chars, self._labels + [""] * len(self._chars)):
            w = max(tfm.horizontalAdvance(ch), sfm.horizontalAdvance(lab), sfm.horizontalAdvance("00")) + 2 * PAD
            self._rects.append(QRect(x, 0, w, h))
            x += w + 2

    def _height(self) -> int:
        return QFontMetrics(self._token_font).height() + 2 * QFontMetrics(self._small_font).height() + 10 + FLIP_BAR

    def sizeHint(self) -> QSize:
        width = self._rects[-1].right() + 4 if self._rects else 200
        return QSize(width, self._height())

    def minimumSizeHint(self) -> QSize:
        return QSize(100, self._height())

    def _index_at(self, pos) -> int:
        for i, r in enumerate(self._rects):
            if r.contains(pos):
                return i
        return -1

    # ---- events -----------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        i = self._index_at(event.position().toPoint())
        if i >= 0 and self._live and event.button() == Qt.LeftButton:
            self.set_selected(i)
            self.positionClicked.emit(i)
        elif i >= 0 and self._live and event.button() == Qt.RightButton:
            self.keepToggled.emit(i)

    def keyPressEvent(self, event) -> None:
        step = {Qt.Key_Left: -1, Qt.Key_Right: 1}.get(event.key())
        if step is None or not self._live or not self._chars:
            return super().keyPressEvent(event)
        i = min(max(self._selected + step, 0), len(self._chars) - 1)
        if i != self._selected:
            self.set_selected(i)
            self.positionClicked.emit(i)

    def event(self, event) -> bool:
        if event.type() == QEvent.ToolTip and self._flips:
            text = self.flip_tooltip(self._index_at(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
                return True
        return super().event(event)

    def mouseMoveEvent(self, event) -> None:
        i = self._index_at(event.position().toPoint())
        self.setCursor(Qt.PointingHandCursor if i >= 0 and self._live else Qt.ArrowCursor)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        sfm = QFontMetrics(self._small_font)
        # on the window (the strip paints no background of its own), from the palette
        window = self.palette().color(self.backgroundRole())
        band = selected_band(self)
        ink, muted, error, border = text_color(self), muted_text(self), error_text(self), faint_line(self)
        selected_ink = legible(SELECTED, composite(band, window))  # the selected token's label, on the band
        for i, r in enumerate(self._rects):
            bad = i in self._bad
            if i == self._selected and self._live:
                p.fillRect(r, band)
                if self.hasFocus():
                    p.setPen(QPen(SELECTED, 1, Qt.DotLine))
                    p.drawRect(r.adjusted(-1, -1, 0, 0))
                p.setPen(QPen(SELECTED, 2))
            else:
                p.setPen(QPen(error if bad else border, 2 if bad else 1))
            p.drawRoundedRect(r.adjusted(1, 1, -1, -1), 4, 4)
            if i in self._kept and self._live:  # kept for the search: a second, dashed frame inside
                p.setPen(QPen(ink, 1, Qt.DashLine))
                p.drawRoundedRect(r.adjusted(3, 3, -3, -3), 3, 3)
            p.setFont(self._small_font)
            p.setPen(muted)
            p.drawText(QRect(r.x(), r.y() + 2, r.width(), sfm.height()), Qt.AlignCenter,
                       f"{i} kept" if i in self._kept and self._live and r.width() > sfm.horizontalAdvance(f"{i} kept")
                       else str(i))
            p.setFont(self._token_font)
            color = error if bad else (ink if self._live else muted)
            p.setPen(color)
            token_rect = QRect(r.x(), r.y() + sfm.height() + 2, r.width(), r.height() - 2 * sfm.height() - 6)
            p.drawText(token_rect, Qt.AlignCenter, self._chars[i])
            if i < len(self._labels) and self._labels[i] != self._chars[i]:  # a text model's label is its token
                p.setFont(self._small_font)
                p.setPen(selected_ink if i == self._selected else muted)
                p.drawText(QRect(r.x(), r.bottom() - sfm.height() - 2 - FLIP_BAR, r.width(), sfm.height()),
                           Qt.AlignCenter, self._labels[i])
            if self._flips:
                self._paint_flip(p, r, self._flips[i].verdict, window, border)
        p.end()

    @staticmethod
    def _paint_flip(p: QPainter, r: QRect, verdict: str, window: QColor, border: QColor) -> None:
        """The token's flip-test bar along the bottom of its cell."""
        bar = QRect(r.x() + 3, r.bottom() - FLIP_BAR - 1, r.width() - 6, FLIP_BAR)
        rgb = FLIP_COLOURS.get(verdict)
        if rgb is not None:
            p.fillRect(bar, legible(QColor(*rgb), window, LINE_CONTRAST))
        elif verdict == "too few changes":
            p.setPen(QPen(border, 1, Qt.DotLine))
            p.drawLine(bar.left(), bar.center().y(), bar.right(), bar.center().y())
