"""engine/ is a library without Qt: nothing in it imports Qt, pyqtgraph or the app."""
import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "app", "shiboken6")


def test_no_engine_file_imports_qt_or_the_app():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_the_whole_engine_loads_no_qt():
    code = ("import sys, pkgutil, importlib, engine\n"
            "for m in pkgutil.walk_packages(engine.__path__, 'engine.'): importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_engine_runtime_flushes_denormals():
    """Denormal arithmetic slowed CPU training 4.5x; importing engine.runtime turns it off."""
    code = ("import torch\n"
            "tiny = torch.tensor([1e-40])\n"
            "before = bool((tiny * 1.0).item() != 0)\n"
            "import engine.runtime\n"
            "after = bool((tiny * 1.0).item() != 0)\n"
            "print(before, after)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent, timeout=120)
    assert done.stdout.split() == ["True", "False"], done.stderr
