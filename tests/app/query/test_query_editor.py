"""The query editor: examples, random inputs, inline errors naming what is allowed, the token strip."""
from PySide6.QtCore import Qt

from app.query.editor import RANDOM_ITEM, QueryEditor
from engine.tasks import get_task


def editor(qtbot, task="counting"):
    e = QueryEditor()
    qtbot.addWidget(e)
    e.set_task(get_task(task))
    e.show()
    return e


def test_starts_on_the_first_example_with_tokens_and_labels(qtbot):
    e = editor(qtbot)
    assert e.text() == get_task("counting").examples()[0]
    assert e.tokens() is not None and e.error() == ""
    assert e.labels()[-4:] == ["Q", ":", "N", "E"]
    assert e.strip.count() == len(e.tokens())
    assert not e.message.isVisible()


def test_typing_an_invalid_character_flags_it_and_says_what_is_allowed(qtbot):
    e = editor(qtbot)
    e.combo.lineEdit().clear()
    qtbot.keyClicks(e.combo.lineEdit(), "Bab#c|a:1")
    assert e.tokens() is None
    assert "'#'" in e.error() and "allowed" in e.error()
    assert e.message.isVisible() and e.message.text() == e.error()
    assert 3 in e.strip._bad  # the '#' is marked in the strip


def test_a_grammar_error_is_explained(qtbot):
    e = editor(qtbot)
    e.set_text("Babcd|a:1")
    assert "3 distinct letters" in e.error()


def test_picking_random_gives_a_valid_query(qtbot):
    e = editor(qtbot, "addition")
    index = e.combo.findText(RANDOM_ITEM)
    e.combo.setCurrentIndex(index)
    e.combo.activated.emit(index)
    assert e.tokens() is not None and e.text() != RANDOM_ITEM
    assert e.labels()[:2] == ["B", "F1"]


def test_clicking_a_token_chooses_its_position(qtbot):
    e = editor(qtbot)
    rect = e.strip.cell_rect(5)
    with qtbot.waitSignal(e.positionClicked) as blocker:
        qtbot.mouseClick(e.strip, Qt.LeftButton, pos=rect.center())
    assert blocker.args == [5]
    assert e.strip.selected() == 5


def test_switching_task_keeps_nothing_invalid(qtbot):
    e = editor(qtbot)
    e.set_task(get_task("addition"))
    assert e.tokens() is not None and e.text() == get_task("addition").examples()[0]


def test_arrow_keys_move_the_chosen_position(qtbot):
    e = editor(qtbot)
    qtbot.mouseClick(e.strip, Qt.LeftButton, pos=e.strip.cell_rect(5).center())
    with qtbot.waitSignal(e.positionClicked) as blocker:
        qtbot.keyClick(e.strip, Qt.Key_Right)
    assert blocker.args == [6]
    qtbot.keyClick(e.strip, Qt.Key_Left)
    qtbot.keyClick(e.strip, Qt.Key_Left)
    assert e.strip.selected() == 4
