"""Render resources/inversionview-studio.svg to the PNG sizes desktops look for (run after editing it).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_icons.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
NAME = "inversionview-studio"
SIZES = (16, 24, 32, 48, 64, 128, 256)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - fonts and painting need an application
    renderer = QSvgRenderer(str(RESOURCES / f"{NAME}.svg"))
    if not renderer.isValid():
        print(f"error: cannot read {NAME}.svg", file=sys.stderr)
        return 1
    out = RESOURCES / "icons"
    out.mkdir(exist_ok=True)
    for size in SIZES:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(out / f"{NAME}-{size}.png"))
    print(f"wrote {len(SIZES)} PNGs to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
