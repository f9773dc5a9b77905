"""The engine in its own process: the window never imports torch, survives the engine's death, refuses an
engine of another protocol, and runs an engine started by any command (another directory, environment)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.app.real_engine import engine_gone, requires_real_engine

pytestmark = requires_real_engine
ROOT = Path(__file__).resolve().parents[3]
LOAD_TIMEOUT_MS = 180_000  # the engine imports torch first, on a busy 2-core machine

# A fresh interpreter (this test process has torch from other tests): the window opens the bundled
# counting model, runs a query, a flow graph, an information map and a patching run, then reports
# which heavy modules its own process holds.
WINDOW_RUN = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore
    from app.workers.flow_request import FlowRequest
    from app.workers.job_request import JobRequest

    def wait(signal, seconds=240, kind=None):
        loop, got = QEventLoop(), []
        signal.connect(lambda *a: (kind is None or a[0].kind == kind) and (got.append(a), loop.quit()))
        QTimer.singleShot(seconds * 1000, loop.quit)
        loop.exec()
        if not got:
            sys.exit(f"timed out waiting for {signal}")
        return got[0]

    store = SettingsStore()
    store.save(AppSettings(model="counting", candidates=256, sampler="decoder"))
    w = MainWindow(store, save_settings=False)
    w.show()
    w.engine.jobFailed.connect(lambda request, why: request.kind != "colour" and sys.exit(f"{request.kind}: {why}"))
    QTimer.singleShot(0, w.start)
    info = wait(w.engine.modelLoaded)[0]
    w.run_query()
    result = wait(w.engine.runFinished)[0]
    key, text = info.key, w.editor.text()
    w.engine.compute_flow(FlowRequest(key, text))
    graph = wait(w.engine.flowReady)[1]
    w.engine.run_job(JobRequest("map", key, {"text": text, "sites": ["x1.post"], "options": {"candidates": 64}}))
    mapped = wait(w.engine.jobFinished, kind="map")[1]
    w.engine.run_job(JobRequest("patch", key, {"text": text, "flips": [[5, "a"]], "metric": "prob"}))
    patched = wait(w.engine.jobFinished, kind="patch")[1]
    heavy = sorted(m for m in ("torch", "transformers", "transformer_lens") if m in sys.modules)
    print("RESULT", result.candidates_done, len(graph.nodes), len(mapped.rows), len(patched.effects), heavy)
    w.close()
""")


def test_the_window_process_never_imports_torch(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", INVERSIONVIEW_CONFIG_DIR=str(tmp_path / "c"),
               INVERSIONVIEW_DATA_DIR=str(tmp_path / "d"), INVERSIONVIEW_LOG_DIR=str(tmp_path / "log"),
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", WINDOW_RUN], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    words = line.split(maxsplit=5)
    assert words[1] == "256" and int(words[2]) > 0 and int(words[3]) > 0 and int(words[4]) > 0
    assert words[5] == "[]", line  # torch, transformers, transformer_lens: none in the window's process


def open_counting(qtbot, **kw):
    from app.main_window import MainWindow
    from app.settings import AppSettings, SettingsStore

    store = SettingsStore()
    store.save(AppSettings(model="counting", candidates=4096, sampler="decoder"))
    w = MainWindow(store, save_settings=False, **kw)
    qtbot.addWidget(w)
    w.show()
    return w


def test_killing_the_engine_mid_query_is_an_event_the_window_survives(qtbot):
    w = open_counting(qtbot)
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.start()
    w.options_bar.candidates.setValue(256)
    with qtbot.waitSignal(w.engine.runFinished, timeout=120_000):
        w.run_query()
    assert w.history.list.count() == 1
    w.options_bar.candidates.setValue(65536)
    with qtbot.waitSignal(w.engine.runPartial, timeout=120_000):
        w.run_query()
    query, site, old = w.editor.text(), w.target(), w.engine.engine_pid
    with qtbot.waitSignal(w.engine.runFailed, timeout=30_000), \
            qtbot.waitSignal(w.engine.engineLost, timeout=30_000) as lost:
        w.engine.kill_engine()
    line = lost.args[0]
    assert "engine stopped" in line and "SIGKILL" in line and "engine.log" in line and "\n" not in line
    assert line in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        pass  # the client started another engine and reloads the model by itself
    assert engine_gone(old) and w.engine.engine_pid not in (None, old)
    assert (w.editor.text(), w.target(), w.history.list.count()) == (query, site, 1)  # nothing on screen was lost
    w.options_bar.candidates.setValue(256)
    with qtbot.waitSignal(w.engine.runFinished, timeout=120_000) as done:
        w.run_query()
    assert done.args[0].candidates_done == 256
    w.close()


def test_an_engine_of_another_protocol_is_refused_with_a_line(qtbot, tmp_path):
    fake = tmp_path / "old_engine.py"
    fake.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from engine.server.wire import FrameWriter
        FrameWriter(sys.stdout.buffer).write({{"reply": "hello", "protocol": 999, "version": "0.0.1"}})
        sys.stdin.buffer.read()
    """))
    w = open_counting(qtbot, engine_command=[sys.executable, str(fake)])
    with qtbot.waitSignal(w.engine.modelFailed, timeout=30_000) as failed:
        w.start()
    message = failed.args[0]
    assert "protocol 999" in message and "0.0.1" in message and "\n" not in message
    assert message == w.picker.state.text()  # shown where the model's state is
    w.close()


def test_an_engine_started_by_another_command_elsewhere_answers(qtbot, tmp_path):
    """As `ssh gpu-box .../python -m engine.server` would: another working directory, a bare environment."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    keep = {k: os.environ[k] for k in ("INVERSIONVIEW_DATA_DIR", "INVERSIONVIEW_CONFIG_DIR", "HOME")
            if k in os.environ}
    env_args = [f"{k}={v}" for k, v in keep.items()]
    command = ["env", "-i", *env_args, f"PYTHONPATH={ROOT}", "OMP_NUM_THREADS=1", "INVERSIONVIEW_THREADS=1",
               "sh", "-c", f'cd "{elsewhere}" && exec "{sys.executable}" -m engine.server']
    w = open_counting(qtbot, engine_command=command)
    with qtbot.waitSignal(w.engine.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        w.start()
    assert loaded.args[0].name == "counting"
    assert w.engine._link.hello["cwd"] == str(elsewhere)
    w.options_bar.candidates.setValue(128)
    with qtbot.waitSignal(w.engine.runFinished, timeout=120_000) as done:
        w.run_query()
    assert done.args[0].candidates_done == 128 and done.args[0].samples
    w.close()


def test_the_engine_exits_when_the_window_dies_without_closing_it(tmp_path):
    """kill -9 of the window's process: the engine's input closes and it ends by itself (no orphan)."""
    import signal

    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from app.workers.engine_link import EngineLink
        hello = []
        link = EngineLink(hello.append, lambda why: None)
        link.start()
        while not hello:
            time.sleep(0.01)
        print(link.pid, flush=True)
        time.sleep(600)
    """)
    env = dict(os.environ, INVERSIONVIEW_LOG_DIR=str(tmp_path / "log"))
    window = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        engine_pid = int(window.stdout.readline())
        assert not engine_gone(engine_pid, timeout_s=0.2)  # running, answering
        os.kill(window.pid, signal.SIGKILL)
        window.wait(30)
        assert engine_gone(engine_pid, timeout_s=30)
    finally:
        if window.poll() is None:
            window.kill()


def test_an_engine_command_that_cannot_start_is_one_line_and_the_window_stays(qtbot, tmp_path):
    w = open_counting(qtbot, engine_command=[str(tmp_path / "no-such-engine")])
    with qtbot.waitSignal(w.engine.modelFailed, timeout=30_000) as failed:
        w.start()
    message = failed.args[0]
    assert message.startswith("Could not start the engine") and "no-such-engine" in message
    assert "No such file" in message and "\n" not in message and message == w.picker.state.text()
    assert w.isVisible()
    w.close()
