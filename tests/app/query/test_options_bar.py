"""The query options follow the open model: Auto is its task's schedule, and a model of another
kind starts with its own metric and candidates (text: the paper's 1 - cosine and 768)."""
from app.query.run_controls import AUTO_TEXT, CUSTOM_TEXT, OptionsBar
from engine.query.types import AUTO_SCHEDULE, TEXT_SCHEDULE
from engine.tasks import get_task


def test_auto_and_the_defaults_follow_the_task(qtbot):
    bar = OptionsBar()
    qtbot.addWidget(bar)
    assert bar.options().schedule == AUTO_SCHEDULE and bar.options().metric == "euclidean"
    bar.set_task_defaults(get_task("text"), reset=True)
    o = bar.options()
    assert (o.schedule, o.metric, o.candidates) == (TEXT_SCHEDULE, "cosine", 768)
    assert bar.schedule.text() == "0.5:0, 1:0, 1:0.1" and "1:0.1" in bar.schedule_mode.toolTip()
    bar.metric_box.setCurrentText("euclidean")  # the user's choice
    bar.set_task_defaults(get_task("text"), reset=True)  # another text model: the choice stays
    assert bar.options().metric == "euclidean"
    bar.set_task_defaults(get_task("counting"), reset=True)
    o = bar.options()
    assert (o.schedule, o.candidates) == (AUTO_SCHEDULE, 1024)
    bar.schedule_mode.setCurrentText(CUSTOM_TEXT)
    bar.schedule.setText("1:0")
    bar.set_task_defaults(get_task("text"), reset=False)  # restoring settings: a chosen schedule stays
    assert bar.options().schedule == ((1.0, 0.0),) and bar.options().candidates == 1024
    bar.schedule_mode.setCurrentText(AUTO_TEXT)
    assert bar.options().schedule == TEXT_SCHEDULE


def test_a_narrow_bar_puts_the_seed_and_same_label_on_a_second_row_uncut(qtbot):
    """Clipped off the edge at 1,100 pixels before: the tail moves to a row of its own instead."""
    bar = OptionsBar()
    qtbot.addWidget(bar)
    bar.resize(500, 60)
    bar.show()
    qtbot.waitUntil(lambda: bar._spill.spilled, timeout=5000)
    bar.layout().activate()
    for widget in (bar.seed, bar.same_label, bar.schedule_mode, bar.metric_box):
        assert widget.width() >= widget.minimumSizeHint().width(), widget
    assert bar.same_label.geometry().right() <= bar.tail.width()
    assert bar.tail.geometry().top() > bar.epsilon.geometry().bottom()  # below the first row
    bar.resize(bar._spill.needed() + 20, 60)
    qtbot.waitUntil(lambda: not bar._spill.spilled, timeout=5000)
    bar.layout().activate()
    assert bar.tail.geometry().top() < bar.epsilon.geometry().bottom()  # back in the one row
    bar.same_label.setChecked(True)
    assert bar.options().same_label
