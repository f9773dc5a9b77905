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
