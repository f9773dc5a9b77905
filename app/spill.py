"""A row of controls whose tail moves to a spare row when the window is too narrow for it.

At 1,100 pixels the window gives the diagram panel and the query options about 400 and 840
pixels; in one row each, Qt squeezed the widgets below their size ("by influence" cut, the
target's combo box showing "iction") or clipped the last ones off the edge. A Spill watches its
owner's width and moves one widget (a group: a QWidget with its own layout) from the end of the
main row to the spare row when the row would not fit at its comfortable width, and back again.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QBoxLayout, QWidget


def comfortable_width(layout: QBoxLayout, extra: QWidget | None = None) -> int:
    """The width `layout` (plus `extra` at its end) takes with every widget at its size hint;
    stretching widgets (sliders, line edits) count at their minimum."""
    widgets = [layout.itemAt(i).widget() for i in range(layout.count())]
    widgets = [w for w in widgets if w is not None and not w.isHidden()] + ([extra] if extra is not None else [])
    total = 0
    for w in widgets:
        grows = bool(w.sizePolicy().expandingDirections() & Qt.Orientation.Horizontal)
        total += max(w.minimumWidth(), w.minimumSizeHint().width()) if grows else w.sizeHint().width()
    margins = layout.contentsMargins()
    return total + max(0, len(widgets) - 1) * max(0, layout.spacing()) + margins.left() + margins.right()


class Spill:
    """Keeps `tail` at the end of `row` while `owner` is wide enough, else in `spare`."""

    def __init__(self, owner: QWidget, tail: QWidget, row: QBoxLayout, spare: QBoxLayout, slack: int = 0):
        self.owner, self.tail, self.row, self.spare, self.slack = owner, tail, row, spare, slack
        tail.setMinimumWidth(1)  # the tail never holds the row wide (the owner could not narrow): it leaves instead

    @property
    def spilled(self) -> bool:
        return self.row.indexOf(self.tail) < 0

    def needed(self) -> int:
        """The owner's width that holds the row with the tail in it."""
        outer = self.owner.layout()
        margins = (outer if outer is not None else self.owner).contentsMargins()
        inner = comfortable_width(self.row, None if not self.spilled else self.tail)
        return inner + margins.left() + margins.right() + self.slack

    def update(self, width: int) -> None:
        """Called from the owner's resizeEvent with its new width."""
        fits = width >= self.needed()
        if fits == self.spilled:
            (self.spare if fits else self.row).removeWidget(self.tail)
            into = self.row if fits else self.spare
            into.insertWidget(_end(into), self.tail)


def _end(layout: QBoxLayout) -> int:
    """Where a widget goes at the end of a row: before a closing stretch, if it has one."""
    n = layout.count()
    return n - 1 if n and layout.itemAt(n - 1).spacerItem() is not None else n
