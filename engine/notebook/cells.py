"""What every exported notebook shares: its cells, the set-up cell, the model reference, literal
values written as Python, the plain-text table helper, and writing the file."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

if TYPE_CHECKING:
    from engine.store.folders import ModelEntry

PROJECT = Path(__file__).resolve().parents[2]  # the checkout (or install) whose engine wrote the notebook

# The set-up cell: offline, and `engine` importable even where the project is not installed.
SETUP = f'''\
# Reproduces a result of InversionView Studio through its engine's public API (engine/__init__.py).
# It needs the project installed (`make setup` or `pip install -e .`), or its folder below on sys.path.
# It runs offline: the model is read from its folder (or the local Hugging Face cache), never downloaded.
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's note about notebook widgets
PROJECT = {str(PROJECT)!r}  # used only when `engine` is not installed
try:
    import engine
except ImportError:
    sys.path.insert(0, PROJECT)
    import engine
print("engine from", os.path.dirname(engine.__file__))'''

# A plain-text table of a list of dicts (no data-frame library needed to read the result).
TABLE = '''\
def show_table(rows, limit=20):
    """Print a list of dicts as a plain-text table, the first `limit` rows."""
    if not rows:
        print("(no rows)")
        return
    names = list(rows[0])
    cells = [[f"{r[n]:.4f}" if isinstance(r[n], float) else str(r[n]) for n in names] for r in rows[:limit]]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))
    if len(rows) > limit:
        print(f"... {len(rows) - limit} more rows")'''


def md(text: str):
    return new_markdown_cell(text)


def code(text: str):
    return new_code_cell(text)


def notebook(cells: list) -> nbformat.NotebookNode:
    """A notebook of `cells` with the Python 3 kernel named, so that it opens and runs anywhere."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def model_ref(entry: ModelEntry) -> str:
    """How a notebook names a model: bundled and user models by name, a Hugging Face cache model
    by its id, any other folder by its absolute path."""
    if entry.source == "folder":
        return str(Path(entry.path).resolve())
    return entry.name


def load_lines(model: str, task: str | None, prompts: str | None) -> str:
    """The lines that find the model: `entry = find_model(MODEL ...)`, with the prompts when given."""
    lines = [f"MODEL = {model!r}  # a model name, a model folder or a Hugging Face cache id"]
    task_arg = ""
    if task is not None:
        lines.append(f"TASK = {task!r}  # which task the checkpoint is")
        task_arg = ", task=TASK"
    lines.append(f"entry = find_model(MODEL{task_arg})")
    if prompts is not None:
        lines += ["from engine.store.folders import with_prompts", "",
                  f"entry = with_prompts(entry, {prompts!r})  # the text model's inputs are these prompts"]
    return "\n".join(lines)


def options_source(options, name: str = "OPTIONS") -> str:
    """`OPTIONS = QueryOptions(...)` with every field written out, so that the notebook does not
    depend on the defaults of the engine that runs it."""
    args = "".join(f"    {f.name}={getattr(options, f.name)!r},\n" for f in fields(options))
    return f"{name} = QueryOptions(\n{args})"


def precision_arg(precision: str) -> str:
    """load_inverter's precision for a result's recorded one ('bf16, re-run in bf16 ...' -> 'bf16')."""
    return "bf16" if precision.startswith("bf16") else "fp32"


def write_notebook(nb: nbformat.NotebookNode, path: str | Path) -> Path:
    """Write a notebook (validated) atomically; OutputError (and no file) when it cannot be written."""
    from engine.cli.outputs import check_output_file
    from engine.store.safefiles import atomic_write_text

    path = Path(path)
    check_output_file(path)
    nbformat.validate(nb)
    atomic_write_text(path, nbformat.writes(nb))
    return path
