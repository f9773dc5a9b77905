"""A slider that says its value wherever it changes: by dragging, by the arrow keys, by Page Up/Down.

QSlider shows nothing of its own; the label beside it is easy to miss, so a keyboard user saw the
threshold move without a word. The value is shown in a tooltip at the handle while the slider has
the focus or is dragged, and its tooltip and accessible description name the current value."""
from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider, QToolTip


def say_value(slider: QSlider, text: str, what: str) -> None:
    """Name the value in the slider's tooltip ("what" says what it sets); show it at the handle
    when the user is moving it (focus or a drag), as dragging and the arrow keys both do."""
    slider.setToolTip(f"{text}: {what}")
    slider.setAccessibleDescription(f"{text}: {what}")
    if not slider.isVisible() or not (slider.hasFocus() or slider.isSliderDown()):
        return
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    handle = slider.style().subControlRect(QStyle.CC_Slider, option, QStyle.SC_SliderHandle, slider)
    QToolTip.showText(slider.mapToGlobal(QPoint(handle.center().x(), handle.top() - 4)), text, slider)
