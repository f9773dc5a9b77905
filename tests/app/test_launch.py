"""Starting the app: no display, start-up without torch, the smoke test, the entry points."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.launch import has_display, parse_args
from engine.store.folders import BUNDLED_DIR, open_folder
from tests.app.real_engine import make_tiny_model, requires_real_engine

ROOT = Path(__file__).resolve().parents[2]


def run_py(args, env, timeout=300):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(extra)
    return env


def test_without_a_display_it_says_so_and_exits_2():
    done = run_py(["main.py"], clean_env(), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "display" in done.stderr and "python main.py --help" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no Qt abort or traceback


def test_display_detection(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert not has_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert has_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert not has_display()
    monkeypatch.setenv("DISPLAY", ":0")
    assert has_display()


def test_arguments():
    assert parse_args([]) == (None, None, None)
    assert parse_args(["--smoke-test"]) == ("build/smoke/screenshot.png", None, None)  # not the tracked docs/
    assert parse_args(["--smoke-test=/tmp/x.png"]) == ("/tmp/x.png", None, None)
    assert parse_args(["--bogus"])[2] is not None


def test_the_declared_entry_points_start_and_reject_a_bad_flag(monkeypatch, capsys):
    """The scripts pyproject.toml installs resolve to functions that answer a bad flag in one line."""
    import importlib
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    targets = list(project["scripts"].values()) + list(project["gui-scripts"].values())
    assert len(targets) == 2
    for target in targets:
        module, func = target.split(":")
        monkeypatch.setattr(sys, "argv", ["prog", "--no-such-flag"])
        with pytest.raises(SystemExit) as stop:
            getattr(importlib.import_module(module), func)()
        assert stop.value.code == 2, target
        err = capsys.readouterr().err
        named = [line for line in err.splitlines() if "--no-such-flag" in line]
        assert len(named) == 1 and named[0].startswith(("error", "main.py: error")), (target, err)
        assert "Traceback" not in err, target


STARTUP = """
import sys, threading
importers = []


class WhoImports:  # records which thread first imports the heavy packages
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "transformer_lens"):
            importers.append(threading.current_thread().name)
        return None


sys.meta_path.insert(0, WhoImports())
from app.launch import make_application
from app.main_window import MainWindow
app = make_application()
w = MainWindow()
w.show()
app.processEvents()
heavy = sorted(m for m in ("torch", "transformer_lens") if m in sys.modules)
w.start()  # the engine process starts loading; this process imports nothing heavy
app.processEvents()
print(f"heavy={heavy} gui_imports={'MainThread' in importers} "
      f"title={w.windowTitle()!r} desktop={app.desktopFileName()}")
w.close()
"""


def test_the_window_shows_before_torch_is_imported(tmp_path):
    env = clean_env(QT_QPA_PLATFORM="offscreen", INVERSIONVIEW_CONFIG_DIR=str(tmp_path / "c"),
                    INVERSIONVIEW_DATA_DIR=str(tmp_path / "d"))
    done = run_py(["-c", STARTUP], env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout.strip().splitlines()[-1]
    assert "heavy=[]" in out and "gui_imports=False" in out, out
    assert "title='InversionView Studio'" in out and "desktop=inversionview-studio" in out
    # how soon it shows (goal 2 s) is measured by benchmarks/startup.py, not asserted on a shared machine


def _smoke_model_dir(tmp_path) -> Path:
    """Where 'counting' comes from: the bundled model when it has a decoder, else a tiny one."""
    bundled = BUNDLED_DIR / "counting"
    if (bundled / "inversionview.json").is_file():
        if not open_folder(bundled).has_decoder:
            pytest.skip("models/counting has no decoder yet; the smoke test needs one")
        return tmp_path / "data"
    make_tiny_model(tmp_path / "data" / "models" / "counting", name="counting")
    return tmp_path / "data"


@requires_real_engine
def test_smoke_test_runs_a_real_query_and_writes_a_screenshot(tmp_path):
    data = _smoke_model_dir(tmp_path)
    shot = tmp_path / "shot.png"
    env = clean_env(INVERSIONVIEW_CONFIG_DIR=str(tmp_path / "c"), INVERSIONVIEW_DATA_DIR=str(data))
    done = run_py(["main.py", f"--smoke-test={shot}"], env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert shot.is_file() and shot.stat().st_size > 20000
    assert "candidates within epsilon" in done.stdout
    assert not (tmp_path / "c" / "settings.json").exists()  # the smoke test leaves the user's settings alone


def _project_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_is_printed_by_both_entry_points_and_shown_in_about(qtbot, window):
    """#31 item 8: `main.py --version` was an error and Help > About named no version."""
    version = _project_version()
    gui_script = "import sys; sys.argv = ['ivs', '--version']; import app.launch as l; l.console_main()"
    for args in (["main.py", "--version"], ["-c", gui_script]):
        done = run_py(args, clean_env(), timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"InversionView Studio {version}", args
    from app.menus import show_about

    box = show_about(window)
    qtbot.waitUntil(box.isVisible, timeout=2000)
    assert f"InversionView Studio {version}" in box.text()
    box.grab().save("/tmp/shots/about.png")
    box.close()


def test_qt_own_options_are_passed_to_qt(tmp_path):
    """#31 item 8: `main.py -style fusion` was refused as an unknown command."""
    from app.qt_args import split_qt_args

    assert split_qt_args(["-style", "fusion", "--smoke-test", "-reverse", "-platform=xcb"]) == \
        (["-style", "fusion", "-reverse", "-platform=xcb"], ["--smoke-test"])
    # the launcher takes them (the unknown flag after them is ours to refuse, by the GUI's usage, not the CLI's)
    done = run_py(["main.py", "-style", "fusion", "--no-such-flag"], clean_env(QT_QPA_PLATFORM="offscreen"), timeout=60)
    assert done.returncode == 2 and "unknown argument '--no-such-flag'" in done.stderr, done.stderr
    assert "invalid choice" not in done.stderr
    # and QApplication is given them
    code = "from app.launch import make_application; print(make_application(['-style', 'fusion']).style().name())"
    done = run_py(["-c", code], clean_env(QT_QPA_PLATFORM="offscreen"), timeout=60)
    assert done.returncode == 0 and done.stdout.strip().lower() == "fusion", done.stderr
