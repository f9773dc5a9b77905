"""The heavy imports (torch, transformers, transformer_lens) done so that other threads keep running.

The app imports them on its engine thread while the window is live, and the window freezes
whenever the importing thread holds the GIL for long. Measured on 2 cores (benchmarks/ui_latency.py
and the stall probe in benchmarks/import_stalls.py), two things in the imports do that:

- Loading libtorch. `import torch._C` makes the dynamic loader map libtorch_cpu and run its static
  initialisers (the operator registry), all inside the import, with the GIL held: 280 ms in one
  piece. ctypes lets go of the GIL around every foreign call, so calling the C library's dlopen
  through ctypes loads the same file while other threads run; the import then finds it loaded
  and only binds Python to it.
- Full garbage-collection passes. The imports create several hundred thousand objects, and each
  full pass they trigger walks all of them with the GIL held: 70-160 ms each. Collection is
  paused while importing (engine/heap.py), and what the imports made is then frozen, so later
  passes skip it.

With both, the longest stall while importing fell from 195 ms to 24 ms (benchmarks/import_stalls.py,
3 runs each), and while the window loads the counting model from 218-276 ms to 25-44 ms
(benchmarks/ui_latency.py, 11 runs).
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
import os
import sys
import threading
from pathlib import Path

from engine import heap

log = logging.getLogger(__name__)

# What the app's engine needs before a model can load: torch and the bridge (engine.runtime),
# the query, flow and text code on top of them.
ENGINE_MODULES = ("engine.runtime", "engine.query.run", "engine.flow.build", "engine.text.hf_tokenizer")

_lock = threading.Lock()
_done = False


def torch_library() -> Path | None:
    """libtorch's shared library inside the installed torch package (found without importing it),
    or None where there is none to preload (Windows, an unusual build)."""
    if not sys.platform.startswith(("linux", "darwin")):
        return None
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    name = "libtorch.dylib" if sys.platform == "darwin" else "libtorch.so"
    path = Path(next(iter(spec.submodule_search_locations))) / "lib" / name
    return path if path.is_file() else None


def load_torch_library() -> Path | None:
    """dlopen libtorch (and with it libtorch_cpu, libc10, CUDA's libraries in a CUDA build) without
    holding the GIL. The flags are the ones Python's import uses, so the later import finds the
    same objects loaded and nothing is loaded twice. Returns the file loaded, or None when skipped
    (the import then loads it the usual way). INVERSIONVIEW_PRELOAD_TORCH=0 turns it off (a
    safety valve for builds this was not measured on: it was measured on the CPU build only)."""
    if "torch" in sys.modules or os.environ.get("INVERSIONVIEW_PRELOAD_TORCH", "1").strip() == "0":
        return None
    path = torch_library()
    if path is None:
        return None
    try:
        dlopen = ctypes.CDLL(None).dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        handle = dlopen(os.fsencode(path), sys.getdlopenflags())
    except (OSError, AttributeError) as e:  # no dlopen symbol here: the import does the work
        log.info("libtorch not preloaded: %s", e)
        return None
    if not handle:
        log.info("libtorch not preloaded: dlopen refused %s", path)
        return None
    return path


def import_engine(modules: tuple[str, ...] = ENGINE_MODULES) -> None:
    """Import the engine's heavy modules on the calling thread, letting other threads run (see the
    module docstring). Done once per process; a second caller waits for the first."""
    global _done
    with _lock:
        if _done:
            return
        load_torch_library()
        with heap.paused():
            for name in modules:
                importlib.import_module(name)
            heap.settle()  # the modules live as long as the process: later passes skip them
        _done = True
