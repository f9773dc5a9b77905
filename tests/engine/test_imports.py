"""The engine's heavy imports leave other threads running (engine/imports.py, engine/heap.py): libtorch
is loaded by a dlopen that lets go of the GIL before torch is imported, collection is paused while
importing and the imported modules are frozen. Checked in fresh interpreters, where torch is not
yet imported; how long the window stalls is measured by benchmarks/ui_latency.py, not here."""
import gc
import json
import os
import subprocess
import sys
import threading

import pytest

from engine import heap
from tests.engine.helpers import ROOT

FRESH = """
import gc, json, sys
from engine.imports import import_engine, load_torch_library
report = {}
loaded = load_torch_library()
report["preloaded"] = str(loaded) if loaded else None
maps = open("/proc/self/maps").read() if sys.platform.startswith("linux") else ""
report["mapped_before_import"] = "libtorch_cpu" in maps and "torch" not in sys.modules
import_engine()
import torch
report["sum"] = float(torch.arange(4.0).sum())
report["gc_enabled"] = gc.isenabled()
report["frozen"] = gc.get_freeze_count()
report["modules"] = [m for m in ("engine.runtime", "engine.query.run", "transformer_lens") if m in sys.modules]
print(json.dumps(report))
"""


def run_fresh(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_libtorch_is_loaded_before_torch_is_imported_and_torch_then_works():
    report = run_fresh(FRESH)
    assert report["preloaded"] and report["preloaded"].endswith("libtorch.so")
    assert report["mapped_before_import"]  # the loader ran outside `import torch`
    assert report["sum"] == 6.0
    assert report["gc_enabled"]  # collection is on again afterwards
    assert report["frozen"] > 100_000  # the imported modules are out of every later pass
    assert report["modules"] == ["engine.runtime", "engine.query.run", "transformer_lens"]


def test_the_preload_can_be_turned_off():
    done = subprocess.run([sys.executable, "-c", "import json\nfrom engine.imports import load_torch_library\n"
                           "print(json.dumps({'loaded': load_torch_library() is not None}))"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "INVERSIONVIEW_PRELOAD_TORCH": "0"})
    assert done.returncode == 0 and json.loads(done.stdout) == {"loaded": False}


def test_a_second_preload_after_torch_is_a_no_op():
    report = run_fresh("import json, torch\nfrom engine.imports import load_torch_library\n"
                       "print(json.dumps({'loaded': load_torch_library() is not None}))")
    assert report == {"loaded": False}


def test_collection_pauses_nest_across_threads_and_restore_the_setting():
    assert gc.isenabled()
    entered, leave = threading.Event(), threading.Event()

    def other():
        with heap.paused():
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with heap.paused():
        assert not gc.isenabled()
        thread.start()
        assert entered.wait(10)
        with heap.paused():
            assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread still imports: collection stays off
    leave.set()
    thread.join(10)
    assert gc.isenabled()
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()  # off before, off after: a pause never turns collection on
    finally:
        gc.enable()


def test_a_pause_ends_when_its_block_fails():
    with pytest.raises(ValueError), heap.paused():
        raise ValueError("a failed model load")
    assert gc.isenabled()
