"""Letting go of big things a piece per turn of the event loop: a graph's readouts, a diagram's scene.

When a new flow graph replaced a GPT-2-sized one, dropping the old readouts (13,000 dict entries
and 4,344 lazy tooltips) freed them all in one go: 9-17 ms of the GUI thread on top of drawing the
new graph. The flow view hands the old dicts here instead, and they are emptied a slice per turn:
at most PIECE entries and app.turns.SLICE_MS. Only containers nobody reads any more are handed
over (the view's own old readouts).

A scene is the same story with Qt's items: clearing GPT-2 XL's diagram with every head shown
(60,000 items) took 110-230 ms in one piece. The diagram puts a fresh scene in and hands the old
one here, to be taken down item by item.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from app.turns import TurnBudget

PIECE = 2000  # at most this many entries freed per turn (1-2 ms, but 15 ms measured on a busy turn)
STRIDE = 100  # entries freed between two looks at the clock


class Retirer(QObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._queue: list = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._step)

    def retire(self, *containers) -> None:
        """Dicts, sets and lists no one will read again: emptied over the next turns."""
        self._queue.extend(c for c in containers if c)
        if self._queue:
            self._timer.start()

    def retire_scene(self, scene, items: list) -> None:
        """A scene no view shows any more: `items` (its top-level items; children go with their
        parents, so list a parent before its children) are removed a slice per turn, each
        deleted as it goes, then the scene itself."""
        self.retire(_SceneTeardown(scene, list(items)))

    def pending(self) -> int:
        return sum(len(c) for c in self._queue)

    def _step(self) -> None:
        budget, clock = PIECE, TurnBudget()
        while self._queue and budget > 0:
            container = self._queue[-1]
            n = min(budget, len(container), STRIDE)
            if isinstance(container, list):
                del container[-n:]
            elif isinstance(container, dict):
                for _ in range(n):
                    container.popitem()
            else:
                for _ in range(n):
                    container.pop()
            budget -= n
            if not container:
                self._queue.pop()
            if clock.spent():  # after a stride at least: every turn makes progress
                break
        if self._queue:
            self._timer.start()


class _SceneTeardown:
    """A scene as a container the retirer empties: each pop removes one item from the scene,
    which hands it back to Python, and dropping it then deletes it; the last pop deletes the
    scene (with whatever no one listed)."""

    def __init__(self, scene, items: list):
        self.scene, self.items = scene, items

    def __len__(self) -> int:
        return len(self.items) + (self.scene is not None)

    def pop(self) -> None:
        if self.items:
            item = self.items.pop()
            try:
                if item.scene() is self.scene:  # not taken along with a parent removed before it
                    self.scene.removeItem(item)
            except RuntimeError:  # Qt deleted it already (a parent went first): nothing to take down
                pass
            return
        if self.scene is not None:
            self.scene.deleteLater()
            self.scene = None
