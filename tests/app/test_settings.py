"""Settings: one JSON file with a schema version; damaged files set aside; atomic saves."""
import json

import pytest

from app.settings import SCHEMA_VERSION, AppSettings, SettingsStore, settings_path


def test_the_path_honours_the_config_dir_override(app_dirs):
    config, _ = app_dirs
    assert settings_path() == config / "settings.json"


def test_missing_file_gives_defaults():
    s = SettingsStore().load()
    assert s == AppSettings()
    assert s.model == "counting" and s.epsilon == 0.1


def test_round_trip_with_schema_version():
    store = SettingsStore()
    store.save(AppSettings(model="addition", query="B123+456=579", site="a1.2", position=9, epsilon=0.25,
                           metric="cosine", candidates=256, schedule=[[1.0, 0.0]], seed=7, geometry="AAA"))
    raw = json.loads(store.path.read_text())
    assert raw["schema"] == SCHEMA_VERSION
    back = SettingsStore().load()
    assert (back.model, back.site, back.position, back.epsilon, back.schedule, back.seed) == \
        ("addition", "a1.2", 9, 0.25, [[1.0, 0.0]], 7)


def test_corrupt_file_is_set_aside_and_defaults_used():
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("{ not json")
    assert store.load() == AppSettings()
    assert not store.path.exists()
    aside = list(store.path.parent.glob("settings.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    assert "moved to" in store.note


def test_other_schema_version_is_set_aside():
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"schema": 999, "settings": {"model": "x"}}))
    assert store.load().model == "counting"
    assert list(store.path.parent.glob("settings.json.corrupt-*"))


def test_a_field_of_the_wrong_type_keeps_its_default():
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    bad = {"epsilon": "big", "position": 3.5, "seed": True, "schedule": [[-1, 0]], "query": "Babc|a:1",
           "candidates": 64, "same_label": 1}
    store.path.write_text(json.dumps({"schema": SCHEMA_VERSION, "settings": bad}))
    s = store.load()
    assert (s.epsilon, s.position, s.seed, s.schedule, s.same_label) == (0.1, -1, 0, [], False)
    assert (s.query, s.candidates) == ("Babc|a:1", 64)


def test_save_is_atomic_and_leaves_no_temp_files():
    store = SettingsStore()
    store.save(AppSettings(seed=1))
    store.save(AppSettings(seed=2))
    names = [p.name for p in store.path.parent.iterdir()]
    assert names == ["settings.json"]
    assert SettingsStore().load().seed == 2


CORRUPT = {
    "candidates of a trillion": '{"schema": 1, "settings": {"candidates": 1000000000000, "model": "fake-counting"}}',
    "seed of 10^30": '{"schema": 1, "settings": {"seed": 1000000000000000000000000000000}}',
    "non-ASCII geometry": '{"schema": 1, "settings": {"geometry": "\\u00e9\\u00e9\\u00e9", "window_state": "\\u2603"}}',
    "schedule of strings": '{"schema": 1, "settings": {"schedule": [["1", "0"]]}}',
    "NaN epsilon": '{"schema": 1, "settings": {"epsilon": NaN, "metric": "manhattan"}}',
    "deeply nested": '{"schema": 1, "settings": ' + "[" * 100000 + "]" * 100000 + "}",
    "huge position": '{"schema": 1, "settings": {"position": 99999999999999999999, "site": "' + "x" * 5000 + '"}}',
    "not an object": "[1, 2, 3]",
    "binary": "\udcff\udcfe",
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_the_window_starts_with_every_corrupt_settings_file(qtbot, fake_models, case):
    from app.main_window import MainWindow
    from tests.app.fakes import FakeEngine

    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(CORRUPT[case].encode("utf-8", "surrogateescape"))
    window = MainWindow(store, backend=FakeEngine(chunk_delay=0.005).backend())
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=60000):
        assert window.start() is not None
    bar = window.options_bar
    assert 16 <= bar.candidates.value() <= 65536 and 0 <= bar.seed.value() and bar.epsilon.value() > 0
    asides = list(store.path.parent.glob("settings.json.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_bytes() == CORRUPT[case].encode("utf-8", "surrogateescape")
    assert "moved to" in store.note
    window.close()


def test_good_values_beside_a_bad_one_are_kept():
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"schema": SCHEMA_VERSION,
                                      "settings": {"candidates": 10**12, "seed": 42, "query": "Babc|a:1"}}))
    s = store.load()
    assert (s.candidates, s.seed, s.query) == (1024, 42, "Babc|a:1")
    assert "candidates" in store.note and "other values kept" in store.note
