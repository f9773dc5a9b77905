"""#31 item 8: the window's own layout: the node pane beside (never over) the results."""
import pytest
from PySide6.QtCore import QRect, Qt, QTimer

from app.main_window import MainWindow
from app.settings import SettingsStore


def click_node(qtbot, w, short, pos):
    node = w.diagram.node(short, pos)
    w.diagram.centerOn(node)
    qtbot.mouseClick(w.diagram.viewport(), Qt.LeftButton,
                     pos=w.diagram.mapFromScene(node.sceneBoundingRect().center()))


def on_screen(widget) -> QRect:
    return QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size())


def covers(a, b) -> bool:
    return on_screen(a).intersects(on_screen(b))


def settle(qtbot, rounds: int = 3) -> None:
    """Let the window's deferred layout steps (zero-time timers queued before this) run."""
    for _ in range(rounds):
        done: list[bool] = []
        QTimer.singleShot(0, lambda done=done: done.append(True))
        qtbot.waitUntil(lambda done=done: bool(done), timeout=2000)


@pytest.mark.parametrize("size", [(1480, 920), (1100, 800), (1920, 1050)])
def test_the_node_pane_is_docked_beside_the_results_never_over_them(qtbot, window, size):
    w = window
    w.resize(*size)
    qtbot.waitUntil(lambda: w.width() == max(size[0], w.minimumSizeHint().width()), timeout=2000)
    click_node(qtbot, w, "x1.post", 14)
    qtbot.waitUntil(lambda: w.node_dock.isVisible(), timeout=2000)
    settle(qtbot)
    assert not w.node_dock.isFloating()
    assert not covers(w.node_dock, w.tabs)
    # the results keep their full width: the progress bar, the histogram and every column show
    assert w.tabs.width() >= w.tabs.minimumSizeHint().width()
    assert w.node_pane.width() >= 250  # and the pane is wide enough to read
    w.grab().save(f"/tmp/shots/node_pane_{size[0]}.png")


def test_a_node_pane_saved_floating_is_restored_docked(qtbot, window):
    w = window
    click_node(qtbot, w, "x1.post", 14)
    qtbot.waitUntil(lambda: w.node_dock.isVisible(), timeout=2000)
    w.node_dock.setFloating(True)  # as an older version left it (or the window state of another one)
    w.node_dock.move(200, 0)
    assert w.node_dock.isFloating()
    w.close()
    again = MainWindow(SettingsStore(), backend=w.engine._backend)
    qtbot.addWidget(again)
    again.show()
    with qtbot.waitSignal(again.engine.modelLoaded, timeout=5000):
        again.start()
    qtbot.waitUntil(lambda: again.node_dock.isVisible(), timeout=2000)
    settle(qtbot)
    assert not again.node_dock.isFloating()
    assert not covers(again.node_dock, again.tabs)
    again.close()
