"""The flow graph's node detail pane, docked beside the results: it never floats over them.

It used to float wherever the window was too narrow for the diagram, the results and the pane
side by side (the default size included), covering the progress bar, the histogram and the
Distance and Count columns; a window state saved then put it back floating at the top of the
screen. Now it cannot float: it docks at the right (or the left, if dragged there), and its width
comes out of the results down to their minimum, then out of itself down to NODE_DOCK_LEAST, and
only then out of the diagram.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget

NODE_DOCK_WIDTH = 400
NODE_DOCK_LEAST = 300  # the top-token table and the attention pattern still read at this width
DIAGRAM_LEGIBLE = 600  # narrower, row labels overlap the nodes and the flow controls are cut


def make_node_dock(window, pane) -> QDockWidget:
    dock = QDockWidget("Flow graph node", window)
    dock.setObjectName("flowNodeDock")
    dock.setWidget(pane)
    dock.setFeatures(QDockWidget.DockWidgetClosable | QDockWidget.DockWidgetMovable)
    dock.setAllowedAreas(Qt.LeftDockWidgetArea | Qt.RightDockWidgetArea)
    window.addDockWidget(Qt.RightDockWidgetArea, dock)
    dock.hide()  # opens when a node is clicked
    return dock


def redock(dock: QDockWidget) -> None:
    """A window state saved floating (by an older version) comes back docked."""
    if dock.isFloating():
        dock.setFloating(False)


def open_beside(window) -> None:
    """Show the pane docked, sized so that the results keep their width and the diagram what it can."""
    dock, split = window.node_dock, window.split
    diagram_before, total = split.sizes()[0], sum(split.sizes())
    results_least = window.tabs.minimumSizeHint().width()
    spare = total - split.handleWidth() - results_least - DIAGRAM_LEGIBLE
    redock(dock)
    dock.show()
    window.resizeDocks([dock], [max(NODE_DOCK_LEAST, min(NODE_DOCK_WIDTH, spare))], Qt.Horizontal)
    QTimer.singleShot(0, lambda: share_split(window, diagram_before))  # after the dock has taken its space


def share_split(window, wanted: int) -> None:
    """The diagram keeps `wanted` (at least DIAGRAM_LEGIBLE) where the results' minimum allows."""
    split = window.split
    total = sum(split.sizes())
    results_least = window.tabs.minimumSizeHint().width()
    diagram = max(0, min(max(wanted, DIAGRAM_LEGIBLE), total - results_least))
    split.setSizes([diagram, total - diagram])
