"""Every app test runs offscreen with its own config and data dirs (never the user's)."""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

# Before anything imports Qt or computes a path: offscreen, offline, and tmp dirs.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="ivs-app-tests-"))
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["INVERSIONVIEW_CONFIG_DIR"] = str(_SESSION_DIR / "config")
os.environ["INVERSIONVIEW_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
LEAK_WAIT_S = 10.0
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from tests.app.fakes import FakeEngine, make_fake_models  # noqa: E402


@pytest.fixture(autouse=True)
def no_thread_left():
    """A test must not leave behind a thread it started: a non-daemon thread, or an engine link's
    (its reader, writer, or the in-thread engine), which ends when its window or client closes.
    (napari's leak check, for threads.) Polled for a few seconds: a closed engine ends by itself."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()
                and (not t.daemon or t.name.startswith("engine"))]

    deadline = time.monotonic() + LEAK_WAIT_S
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not leaked(), f"threads left running after the test: {sorted(t.name for t in leaked())}"


@pytest.fixture(autouse=True)
def app_dirs(tmp_path, monkeypatch):
    """Fresh config and data dirs per test."""
    config, data = tmp_path / "config", tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_CONFIG_DIR", str(config))
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    return config, data


@pytest.fixture(autouse=True)
def turn_clock(monkeypatch):
    """The clock that cuts sliced GUI work (app/turns.py) stands still in tests: a slice then ends
    by its item count alone, the same on a loaded CI machine as on an idle one. A test of the
    time budget moves it by hand (`turn_clock.advance`)."""
    import app.turns

    class Clock:
        t = 0.0
        step = 0.0  # seconds added on every look

        def __call__(self):
            self.t += self.step
            return self.t

        def advance(self, seconds: float) -> None:
            self.t += seconds

    clock = Clock()
    monkeypatch.setattr(app.turns, "now", clock)
    return clock


@pytest.fixture
def fake_engine():
    return FakeEngine(chunk_delay=0.005)


@pytest.fixture
def fake_models(app_dirs):
    return make_fake_models()


def open_window(qtbot, backend, model: str = "fake-counting", query: str = ""):
    """The real main window on a given engine backend, shown, with its model loaded."""
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore

    store = SettingsStore()
    store.save(AppSettings(model=model, query=query))
    window = MainWindow(store, backend=backend)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.engine.modelLoaded, timeout=60000):
        window.start()
    return window


@pytest.fixture
def window(qtbot, fake_engine, fake_models):
    w = open_window(qtbot, fake_engine.backend())
    yield w
    w.close()
    qtbot.waitUntil(lambda: not w.engine.engine_alive, timeout=5000)  # the engine ends with its window
