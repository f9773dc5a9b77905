"""Results as runnable Jupyter notebooks: the code that reproduces a query, a flow graph, an
information map or a patching run through the public API (engine/__init__.py), then the result as a table, a check
against the exported figures, and the cells a researcher writes next.

    nb = query_notebook(result, "counting", options)   # an nbformat NotebookNode
    write_notebook(nb, "query.ipynb")                   # atomic; OutputError when it cannot be written

A notebook names its model (a name, a folder or a Hugging Face cache id), never embeds it, and
runs offline on a machine with the project installed.
"""
from __future__ import annotations

from engine.notebook.cells import model_ref, write_notebook
from engine.notebook.flow import flow_notebook
from engine.notebook.infomap import map_notebook
from engine.notebook.patch import patch_notebook
from engine.notebook.query import options_of, query_notebook

__all__ = ["flow_notebook", "map_notebook", "model_ref", "options_of", "patch_notebook", "query_notebook",
           "write_notebook"]
