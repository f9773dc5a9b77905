"""Issue #31, items 2 and 3: the model picker and the engine's model cache follow a model folder
whose decoder was trained after the window opened it, and the picker keeps showing the model
the window has open when the Train dialog adds a new one."""
from __future__ import annotations

import json
from types import SimpleNamespace

from engine.probed.model import PAPER_CONFIGS
from engine.tasks import get_task
from tests.app.conftest import open_window
from tests.app.fakes import FakeEngine


class DecoderOptionalEngine(FakeEngine):
    """As the real engine's app backend: a folder without a decoder loads (sites and flow graph work)."""

    def load_inverter(self, entry, device=None):
        if entry.has_decoder:
            inv = super().load_inverter(entry, device)
            inv.can_query = True
            return inv
        self.loads += 1
        return SimpleNamespace(entry=entry, probed=SimpleNamespace(task=get_task(entry.task), config=entry.probed),
                               sites=[], precision="fp32", can_query=False)


def folder_without_decoder(folder):
    folder.mkdir(parents=True)
    config = {"format": 1, "name": folder.name, "task": "counting", "probed": PAPER_CONFIGS["counting"].to_dict()}
    (folder / "inversionview.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def train_decoder_into(folder):
    """What `train-decoder --model FOLDER` leaves: the decoder file and its section in the record."""
    record = folder / "inversionview.json"
    config = json.loads(record.read_text(encoding="utf-8"))
    config["decoder"] = {"d_model": 128, "n_layers": 2}
    record.write_text(json.dumps(config), encoding="utf-8")
    (folder / "decoder.safetensors").write_bytes(b"")


def test_a_decoder_trained_meanwhile_is_loaded_when_the_folder_is_opened_again(qtbot, fake_models, tmp_path):
    engine = DecoderOptionalEngine()
    window = open_window(qtbot, engine.backend())
    folder = folder_without_decoder(tmp_path / "mine")
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        window.picker.open_path(str(folder))
    assert "no decoder yet" in window.picker.state.text()
    assert not window.run_bar.run_button.isEnabled()

    train_decoder_into(folder)
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        window.picker.open_path(str(folder))  # File > Open model folder… on the same folder
    assert "no decoder" not in window.picker.combo.currentText()
    assert "ready" in window.picker.state.text() and "no decoder" not in window.picker.state.text()
    assert window.run_bar.run_button.isEnabled()
    with qtbot.waitSignal(window.engine.runFinished, timeout=20000):
        window.run_query()
    window.close()


def test_a_decoder_trained_meanwhile_is_loaded_when_its_row_is_picked_again(qtbot, fake_models, tmp_path):
    engine = DecoderOptionalEngine()
    window = open_window(qtbot, engine.backend())
    folder = folder_without_decoder(tmp_path / "mine")
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        window.picker.open_path(str(folder))
    row = window.picker.combo.currentIndex()
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        window.picker.choose(window.picker.entries().index(window.picker.find("fake-counting")))
    train_decoder_into(folder)
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        window.picker.choose(row)  # the folder's row in the Model box, not File > Open
    assert "no decoder" not in window.picker.combo.currentText()
    assert window.run_bar.run_button.isEnabled()
    window.close()


def test_the_picker_keeps_the_open_folder_after_the_train_dialog_adds_a_model(qtbot, window, tmp_path):
    from tests.app.fakes import make_fake_models

    folder = make_fake_models((("fake-folder", "addition"),))[0]
    mine = tmp_path / "opened" / "addition-here"
    mine.parent.mkdir()
    folder.rename(mine)
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=10000):
        window.picker.open_path(str(mine))
    dialog = window.open_train_dialog()
    make_fake_models((("just-trained", "counting"),))
    dialog.modelTrained.emit(window.picker.find("fake-counting"))  # a run finished: the picker refreshes

    assert str(window.picker.current().path) == str(mine)
    assert str(mine) in window.picker.combo.currentText()
    assert str(mine) in window.picker.opened_folders()
    assert "just-trained" in [e.name for e in window.picker.entries()]
    dialog.close()
