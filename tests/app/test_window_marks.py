"""#31 item 8: what the window says without being asked: values, focus, pins, malformed samples."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolTip

from app.flow.controls import FlowControls


def focus(qtbot, widget) -> None:
    widget.window().activateWindow()
    widget.setFocus(Qt.TabFocusReason)
    qtbot.waitUntil(widget.hasFocus, timeout=2000)


def test_arrow_keys_on_the_threshold_slider_say_the_new_value(qtbot):
    controls = FlowControls()
    qtbot.addWidget(controls)
    controls.show()
    qtbot.waitExposed(controls)
    focus(qtbot, controls.slider)
    with qtbot.waitSignal(controls.thresholdChanged, timeout=2000):
        qtbot.keyClick(controls.slider, Qt.Key_Right)
    value = f"{controls.threshold():.2f}"
    assert controls.value_label.text() == value
    assert value in controls.slider.toolTip()  # hovering it after says the value too
    qtbot.waitUntil(lambda: QToolTip.isVisible() and value in QToolTip.text(), timeout=2000)
    with qtbot.waitSignal(controls.thresholdChanged, timeout=2000):
        qtbot.keyClick(controls.slider, Qt.Key_PageUp)
    again = f"{controls.threshold():.2f}"
    assert again != value
    qtbot.waitUntil(lambda: again in QToolTip.text(), timeout=2000)


def run_once(qtbot, w) -> None:
    with qtbot.waitSignal(w.engine.runFinished, timeout=20000):
        w.run_query()


def test_pinned_history_entries_are_marked_in_the_list(qtbot, window):
    w = window
    run_once(qtbot, w)
    run_once(qtbot, w)
    items = [w.history.list.item(i) for i in range(2)]  # newest first
    assert not any("pinned" in item.text() for item in items)
    w.history.list.setCurrentItem(items[1])
    qtbot.mouseClick(w.history.pin_left, Qt.LeftButton)
    w.history.list.setCurrentItem(items[0])
    qtbot.mouseClick(w.history.pin_right, Qt.LeftButton)
    assert w.tabs.currentWidget() is w.compare
    assert "pinned left" in items[1].text() and items[1].font().bold()
    assert "pinned right" in items[0].text() and "left" not in items[0].text().split("·")[0]
    assert "Compare" in items[0].toolTip()
    qtbot.mouseClick(w.history.pin_left, Qt.LeftButton)  # the newest on both sides: the older one is no longer shown
    assert "pinned left and right" in items[0].text()
    assert "pinned" not in items[1].text() and not items[1].font().bold()


def frame_pixels(widget):
    """The colours down the middle of the widget's left edge, as it shows on screen."""
    from PySide6.QtGui import QPalette

    image = widget.grab().toImage()
    highlight = widget.palette().color(QPalette.Highlight).rgb()
    return [image.pixelColor(x, image.height() // 2).rgb() == highlight for x in (0, 1)], highlight


def test_the_diagram_shows_a_focus_frame_when_tab_reaches_it(qtbot, window):
    w = window
    d = w.diagram
    w.editor.setFocus()
    qtbot.waitUntil(lambda: not d.hasFocus(), timeout=2000)
    unfocused, _ = frame_pixels(d)
    assert not any(unfocused)
    focus(qtbot, d)
    focused, _ = frame_pixels(d)
    assert all(focused)  # a 2 px frame in the palette's highlight colour
    w.grab().save("/tmp/shots/after/diagram_focus.png")
    w.editor.setFocus()
    qtbot.waitUntil(lambda: not d.hasFocus(), timeout=2000)
    assert not any(frame_pixels(d)[0])  # and it goes with the focus
