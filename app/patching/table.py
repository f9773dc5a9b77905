"""The patched nodes as a table, largest share first, with the share drawn as a bar.

A bar reads faster than a column of percentages: the few nodes that carry the effect stand out
at a glance, and a negative share (teal, growing the same way) cannot be mistaken for a small one.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

from app.patching.overlay import metric_name, number, percent, share_colour
from app.style import outline

COLUMNS = ("node", "position", "patched", "share of the effect")
NODE, POSITION, PATCHED, SHARE = range(4)
SHARE_ROLE = Qt.UserRole + 1
RIGHT_MIDDLE = Qt.AlignRight | Qt.AlignVCenter
LEFT_MIDDLE = Qt.AlignLeft | Qt.AlignVCenter


class PatchTableModel(QAbstractTableModel):
    """Rows: PatchReport.ranked(); read-only."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report = None
        self._rows: list = []

    def set_report(self, report) -> None:
        self.beginResetModel()
        self.report = report
        self._rows = report.ranked() if report is not None else []
        self.endResetModel()

    def effect(self, row: int):
        return self._rows[row]

    def row_of(self, site: str, position: int) -> int | None:
        for row, e in enumerate(self._rows):
            if e.site == site and e.position == position:
                return row
        return None

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role != Qt.DisplayRole or orientation != Qt.Horizontal:
            return None
        if section == PATCHED and self.report is not None:
            return f"{metric_name(self.report)} patched"
        return COLUMNS[section]

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        e, col = self._rows[index.row()], index.column()
        if role == SHARE_ROLE:
            return e.share
        if role == Qt.TextAlignmentRole and col == PATCHED:
            return RIGHT_MIDDLE
        if role == Qt.ToolTipRole:
            return f"{e.node}: select it in the diagram"
        if role != Qt.DisplayRole:
            return None
        if col == NODE:
            return e.site
        if col == POSITION:
            return f"{e.position} {e.position_label!r}"
        if col == PATCHED:
            return number(e.metric, self.report.inputs.metric)
        return percent(e.share)


class ShareBarDelegate(QStyledItemDelegate):
    """A bar as long as |share| (full at 100%), in the diagram's colour for a full share, and the percentage."""

    def paint(self, painter, option, index) -> None:
        share = index.data(SHARE_ROLE)
        painter.save()
        if option.state & QStyle.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight().color().lighter(160))
        r = option.rect.adjusted(4, 4, -4, -4)
        text_w = option.fontMetrics.horizontalAdvance("−100%") + 6
        area = QRectF(r.left(), r.top(), max(r.width() - text_w, 10), r.height())
        if share is not None:
            full = share_colour(1.0 if share >= 0 else -1.0)
            painter.fillRect(QRectF(area.left(), area.top(), area.width() * min(abs(share), 1.0), area.height()),
                             QColor(full))
        painter.setPen(QPen(outline(), 1))
        painter.drawRect(area)
        painter.setPen(option.palette.text().color())
        painter.drawText(QRect(int(area.right()) + 4, r.top(), text_w - 4, r.height()), RIGHT_MIDDLE,
                         percent(share))
        painter.restore()
