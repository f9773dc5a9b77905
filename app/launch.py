"""Starting the desktop app: display check, QApplication identity, the window, the smoke test.

Nothing here imports torch: the window shows first and the engine process loads the model.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

from engine.logs import log_path, setup_logging
from engine.store.shipped import shipped_dir

APP_ID = "inversionview-studio"  # the .desktop file's name and the Wayland app id
DISPLAY_NAME = "InversionView Studio"
RESOURCES = shipped_dir("resources")  # icons: the checkout's, or the installed copy
# Platforms that draw without a windowing system (offscreen tests, VNC, framebuffers).
GIL_SWITCH_S = 0.0005
HEADLESS_PLATFORMS = {"offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay"}

SMOKE_SHOT = "build/smoke/screenshot.png"  # ignored by git: a smoke run never changes a tracked file

USAGE = """usage: python main.py [--smoke-test[=PATH]] [--engine-command=CMD] [--version] [Qt options]

Opens InversionView Studio. --smoke-test starts the window offscreen, runs one query on the
bundled model, saves a screenshot (default build/smoke/screenshot.png, outside the tracked docs/)
and exits 0 on success. --engine-command runs the engine with another command that speaks its
protocol on standard input and output, e.g. on a GPU machine:
  --engine-command="ssh gpu-box /path/to/.venv/bin/python -m engine.server"
(remembered in the settings; --engine-command= goes back to this machine). Qt's own options
(-style, -platform, -reverse…) are passed to Qt. For the command line, run: python main.py --help"""


def has_display() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if platform in HEADLESS_PLATFORMS:
        return True
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return True  # Windows and macOS always have their native platform
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_args(args: list[str]) -> tuple[str | None, str | None, str | None]:
    """(smoke test screenshot path or None, engine command or None (not given), error text or None)."""
    from app.workers.engine_link import parse_command

    smoke = command = None
    args = list(args)
    while args:
        arg = args.pop(0)
        if arg == "--smoke-test":
            smoke = SMOKE_SHOT
        elif arg.startswith("--smoke-test="):
            smoke = arg.split("=", 1)[1] or SMOKE_SHOT
        elif arg == "--engine-command" or arg.startswith("--engine-command="):
            if "=" not in arg and not args:
                return None, None, ("--engine-command needs a command, "
                                    "e.g. --engine-command='ssh gpu-box python -m engine.server'")
            command = arg.split("=", 1)[1] if "=" in arg else args.pop(0)
            try:
                command and parse_command(command)
            except ValueError as e:
                return None, None, str(e)
        else:
            return None, None, f"unknown argument {arg!r}"
    return smoke, command, None


def app_icon():
    from PySide6.QtGui import QIcon

    icon = QIcon()
    svg = RESOURCES / f"{APP_ID}.svg"
    for png in sorted((RESOURCES / "icons").glob(f"{APP_ID}-*.png")):
        icon.addFile(str(png))
    if svg.is_file():
        icon.addFile(str(svg))
    return icon


def _install_excepthook() -> None:
    """An unexpected error in a slot becomes a message, not a silent traceback or an abort."""

    def hook(kind, value, tb) -> None:
        logging.getLogger("app").error("unexpected error in the GUI thread", exc_info=(kind, value, tb))
        traceback.print_exception(kind, value, tb)
        try:
            from PySide6.QtWidgets import QApplication

            from app.messages import show_message

            window = QApplication.activeWindow()
            show_message(window, "Unexpected error",
                         f"{kind.__name__}: {value}\n\nThe app keeps running; details are in the log: {log_path()}")
        except Exception:  # noqa: BLE001 - never fail while reporting a failure
            pass

    sys.excepthook = hook


def _quiet_known_qt_noise() -> None:
    """Drop the offscreen platform's harmless 'propagateSizeHints' warning; print everything else."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(mode, context, message: str) -> None:
        if "propagateSizeHints" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def settle_heap() -> None:
    """Move what start-up made (the imports, the window's widgets: they live as long as the app) out
    of the garbage collector's later full passes. A full pass over them took 30 ms (75,000 objects)
    while the window waits for the GIL; decoding a GPT-2-sized flow graph (52,000 objects) sets such
    passes off. benchmarks/text_window.py, idle 2 cores, 2 runs each: flow graphs of 3 more prompts,
    longest stall 32-43 ms and 1-2 ticks over 30 ms with it, 52-59 ms and 8 ticks without."""
    import gc

    gc.freeze()


def make_application(qt_args: list[str] = ()):
    """The QApplication (made once), given Qt's own options from the command line (app/qt_args.py)."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    _quiet_known_qt_noise()
    # The engine link's reader thread runs Python in this process (decoding replies, ranking a
    # query's chunks, preparing a flow graph); a GUI callback waiting for the GIL waits up to the
    # switch interval each time, and a repaint makes hundreds of callbacks. Measured with the engine
    # in its own process (benchmarks/ui_latency.py, idle 2 cores, 3 runs): longest stall 71-126 ms
    # at the default 5 ms, 56-64 ms at 0.5 ms.
    sys.setswitchinterval(GIL_SWITCH_S)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_ID, *qt_args])
    app.setApplicationName(APP_ID)
    app.setApplicationDisplayName(DISPLAY_NAME)
    QGuiApplication.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    return app


def main(args: list[str] | None = None) -> int:
    from app.qt_args import split_qt_args

    qt_args, args = split_qt_args(list(sys.argv[1:] if args is None else args))
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0
    if "--version" in args:
        from engine.cli.main import package_version

        print(f"{DISPLAY_NAME} {package_version()}")
        return 0
    smoke, engine_command, error = parse_args(args)
    if error:
        print(f"error: {error}\n{USAGE}", file=sys.stderr)
        return 2
    if smoke:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif not has_display():
        print("InversionView Studio needs a display (neither DISPLAY nor WAYLAND_DISPLAY is set); "
              "the command line works without one: python main.py --help", file=sys.stderr)
        return 2

    from PySide6.QtCore import QTimer

    from app.main_window import MainWindow
    from app.settings import SettingsStore

    setup_logging()
    app = make_application(qt_args)
    _install_excepthook()
    if smoke:
        import tempfile

        # a fresh settings file: the smoke test always runs the bundled model's defaults
        store = SettingsStore(Path(tempfile.mkdtemp(prefix="ivs-smoke-")) / "settings.json")
        window = MainWindow(store, save_settings=False, engine_command=_engine_command(engine_command, store))
    else:
        store = SettingsStore()
        window = MainWindow(store, engine_command=_engine_command(engine_command, store))
    window.setWindowIcon(app.windowIcon())
    window.show()
    settle_heap()
    if smoke:
        from app.smoke_test import SmokeTest

        driver = SmokeTest(window, Path(smoke))
        QTimer.singleShot(0, driver.start)
    else:
        QTimer.singleShot(0, window.start)  # after the first paint: the engine loads while the window shows
    code = app.exec()
    if smoke:
        code = driver.exit_code
    return code


def _engine_command(given: str | None, store) -> list[str] | None:
    """The engine command: --engine-command (remembered), else the setting; None: the default."""
    from app.workers.engine_link import parse_command

    settings = store.load()
    if given is not None and given != settings.engine_command:
        settings.engine_command = given
        try:
            store.save(settings)
        except OSError:
            pass  # used this time, not remembered
    text = settings.engine_command if given is None else given
    return parse_command(text) if text else None


def console_main() -> None:
    """The `inversionview-studio` gui-script entry point."""
    sys.exit(main(sys.argv[1:]))
