"""The main window's fit to its screen and to itself (#31 item 8), apart from its wiring.

- A window whose minimum size is larger than the screen's room (a small screen, or
  QT_SCALE_FACTOR=2 halving a screen's logical size) gets a minimum that fits, and its central
  area scrolls instead of being cut off (`fit_minimum`).
- The History dock gives up height on a short window, so the results keep rows to read
  (`HistoryHeight`); once the user drags it, their height stays.
- Comparing needs width: the Compare tab narrows the diagram to its minimum width; while it is
  open the diagram shows every position (ModelDiagram.fit), and gets back its own width and fit
  after (`follow_compare`).
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import QFrame, QMainWindow, QScrollArea, QWidget

SCROLL_NAME = "fitScroll"
HISTORY_MOST, HISTORY_LEAST = 130, 76  # px: two entries show at the least
HISTORY_ROOM = 640  # px of the window's height kept for the rest before the History dock grows past its least


def frame_extra(window: QMainWindow) -> QSize:
    """What the window manager's frame adds to the window's size."""
    frame = window.frameGeometry()
    return QSize(max(0, frame.width() - window.width()), max(0, frame.height() - window.height()))


def fit_minimum(window: QMainWindow, room: QRect) -> None:
    """Make the window's minimum size fit `room` (a screen's available geometry): the central
    widget goes into a scroll area when its own minimum is what does not fit."""
    extra = frame_extra(window)
    most = QSize(room.width() - extra.width(), room.height() - extra.height())
    hint = window.minimumSizeHint()
    if hint.width() <= most.width() and hint.height() <= most.height():
        return
    central = window.centralWidget()
    if central is not None and central.objectName() != SCROLL_NAME:
        window.takeCentralWidget()
        area = QScrollArea()
        area.setObjectName(SCROLL_NAME)
        area.setFrameShape(QFrame.NoFrame)
        area.setWidgetResizable(True)  # as wide and tall as the window allows, scrolling below its minimum
        area.setWidget(_Holder(central))
        window.setCentralWidget(area)
    hint = window.minimumSizeHint()
    window.setMinimumSize(min(hint.width(), most.width()), min(hint.height(), most.height()))


class _Holder(QWidget):
    """The central widget inside the scroll area, sized by its minimum alone: with a layout, the
    word-wrapped labels' height-for-width made the area scroll to their preferred height."""

    def __init__(self, central: QWidget):
        super().__init__()
        self._central = central
        central.setParent(self)
        central.show()
        central.installEventFilter(self)  # its minimum changes: so does ours

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.LayoutRequest:
            self.updateGeometry()
        return False

    def minimumSizeHint(self) -> QSize:
        return self._central.minimumSizeHint().expandedTo(self._central.minimumSize())

    def sizeHint(self) -> QSize:
        return self.minimumSizeHint()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._central.setGeometry(self.rect())


class HistoryHeight(QObject):
    """Keeps the History dock short on a short window (HISTORY_LEAST at 716 px, HISTORY_MOST from
    770 px up) as the window is resized, until the user drags its height: a resize of the dock
    while the window keeps its size, once the last height given has settled."""

    def __init__(self, window: QMainWindow, dock):
        super().__init__(window)
        self._window, self._dock = window, dock
        self._settled_at: QSize | None = None  # the window's size when the height given last settled
        window.installEventFilter(self)
        dock.installEventFilter(self)
        self.apply()

    def wanted(self) -> int:
        return int(min(HISTORY_MOST, max(HISTORY_LEAST, self._window.height() - HISTORY_ROOM)))

    def apply(self) -> None:
        self._settled_at = None
        self._window.resizeDocks([self._dock], [self.wanted()], Qt.Vertical)
        QTimer.singleShot(0, self, self._settle)  # the layout gives it its height in a later turn

    def _settle(self) -> None:
        self._settled_at = self._window.size()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Resize:
            if watched is self._window:
                self.apply()
            elif self._settled_at is not None and self._settled_at == self._window.size():
                self._window.removeEventFilter(self)  # the user dragged it: their height from now on
                self._dock.removeEventFilter(self)
        return False


def follow_compare(window) -> None:
    """While the Compare tab is open (and the diagram narrow), the diagram shows every position;
    after, it fits as it did before."""
    before: list[bool] = []
    sizes: list[list[int]] = []  # the splitter's sizes before Compare opened

    def on_tab(index: int) -> None:
        diagram, split = window.diagram, window.split
        if window.tabs.widget(index) is window.compare:
            if not sizes:
                sizes.append(split.sizes())
                narrow = window.diagram_panel.minimumWidth()
                split.setSizes([narrow, sum(sizes[0]) - narrow])
            if not before:
                before.append(diagram.fits_all())
            diagram.fit(all_positions=True)
        else:
            if sizes:
                split.setSizes(sizes.pop())
            if before:
                diagram.fit(all_positions=before.pop())

    window.tabs.currentChanged.connect(on_tab)
