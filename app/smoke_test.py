"""`python main.py --smoke-test[=PATH]`: the real window, offscreen, one real query, a screenshot.

Like pyqtgraph's example runner: proves the app starts, talks to the engine and paints, then
quits on its own. Exit code 0 on success, 1 with a one-line reason otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

TIMEOUT_S = 300  # a first torch import plus a query on a busy 2-core machine
COLOUR_WAIT_MS = 20_000  # the screenshot waits this long at most for the rows' token colours


class SmokeTest(QObject):
    def __init__(self, window, screenshot: Path, timeout_s: float = TIMEOUT_S):
        super().__init__(window)
        self.window = window
        self.screenshot = screenshot
        self.exit_code = 1
        engine = window.engine
        engine.modelLoaded.connect(self._on_loaded)
        engine.modelFailed.connect(lambda msg: self._fail(f"model did not load: {msg}"))
        engine.runFinished.connect(self._on_finished)
        engine.runFailed.connect(lambda msg: self._fail(f"query failed: {msg}"))
        QTimer.singleShot(int(timeout_s * 1000), lambda: self._fail(f"no result within {timeout_s:.0f} s"))

    def start(self) -> None:
        entry = self.window.start()
        if entry is None:
            self._fail("no model found (the bundled models live in models/; see python main.py --help)")
        else:
            print(f"smoke test: loading model {entry.name} from {entry.path}", flush=True)

    def _on_loaded(self, info) -> None:
        print(f"smoke test: model {info.name} loaded in {info.seconds:.1f} s", flush=True)
        if self.window.run_query() is None:
            self._fail("the window refused to run its default query")

    def _on_finished(self, result) -> None:
        if not result.samples:
            self._fail("the query returned no samples")
            return
        print(f"smoke test: {result.summary()} in {result.seconds:.1f} s", flush=True)
        QTimer.singleShot(150, self._shoot)  # let the final rows and histogram paint

    def _shoot(self, waited_ms: int = 0) -> None:
        if self.window.colouring.visible_missing() and waited_ms < COLOUR_WAIT_MS:
            # the token colours of the rows on screen come just after the result (app/results/colouring.py)
            QTimer.singleShot(50, lambda: self._shoot(waited_ms + 50))
            return
        self.screenshot.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.screenshot), "PNG"):
            self._fail(f"could not write {self.screenshot}")
            return
        print(f"smoke test: screenshot saved to {self.screenshot}", flush=True)
        self.exit_code = 0
        self.window.close()
        QApplication.instance().exit(0)

    def _fail(self, why: str) -> None:
        if self.exit_code == 0:
            return
        print(f"smoke test failed: {why}", file=sys.stderr, flush=True)
        self.exit_code = 1
        self.window.close()
        QApplication.instance().exit(1)
