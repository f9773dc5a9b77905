"""InversionView Studio's engine: a library to script without the app (it never imports Qt).

The public API, importable from here; each name loads its module on first use, so that
`import engine` stays cheap (torch is imported only when a name that needs it is touched):

    from engine import QueryOptions, find_model, load_inverter, run_query, write_csv
    inv = load_inverter(find_model("counting"))
    result = run_query(inv, "abcab|a:2", "x1.post", ":", QueryOptions(candidates=256))
    write_csv(result, "samples.csv")

Rooms (docs/design.md §8): `text/` tokenizers, `tasks/` the synthetic tasks, `probed/` the models
under study (config, sites, reader, training, evaluation), `decoder/` the conditional decoder,
`query/` InversionView queries, `flow/` the flow graph, `patching/` activation patching, `store/`
folders, files, cards and CSV, `train/` the shared training loop, `notebook/` results as runnable
notebooks, `cli/` the command line.
docs/api.md documents the public names with examples that the test suite runs.
"""
from __future__ import annotations

import importlib

# public name -> the module that defines it
_API = {
    # models on disk
    "list_models": "engine.store.folders",
    "find_model": "engine.store.folders",
    "open_folder": "engine.store.folders",
    "load_probed": "engine.store.folders",
    "ModelEntry": "engine.store.folders",
    # tasks, tokenizers and sites
    "TASKS": "engine.tasks",
    "get_task": "engine.tasks",
    "Tokenizer": "engine.text",
    "CharTokenizer": "engine.text",
    "all_sites": "engine.probed.sites",
    "get_site": "engine.probed.sites",
    # InversionView queries
    "load_inverter": "engine.query.run",
    "run_query": "engine.query.run",
    "colour_samples": "engine.query.colour",
    "Inverter": "engine.query.run",
    "QueryOptions": "engine.query.types",
    "QueryResult": "engine.query.types",
    "SampleResult": "engine.query.types",
    "write_csv": "engine.store.export",
    # the flow graph
    "build_flow": "engine.flow.build",
    "flow_for_query": "engine.flow.build",
    "FlowGraph": "engine.flow.graph",
    # the information map: a query at every (site, position)
    "run_map": "engine.explain.sweep",
    "sweep_options": "engine.explain.sweep",
    "InformationMap": "engine.explain.sweep",
    # activation patching: does a node carry the difference between two inputs to the answer?
    "make_setup": "engine.patching.setup",
    "flip_one": "engine.patching.setup",
    "PatchSetup": "engine.patching.setup",
    "parse_nodes": "engine.patching.nodes",
    "patch_nodes": "engine.patching.run",
    "patch_cumulative": "engine.patching.run",
    "PatchReport": "engine.patching.report",
    "CumulativeReport": "engine.patching.report",
    # results as runnable notebooks (engine/notebook/)
    "query_notebook": "engine.notebook",
    "flow_notebook": "engine.notebook",
    "map_notebook": "engine.notebook",
    "patch_notebook": "engine.notebook",
    "write_notebook": "engine.notebook",
    # training and checking
    "train_probed": "engine.probed.train",
    "ProbedTrainConfig": "engine.probed.train",
    "train_decoder": "engine.decoder.train",
    "DecoderTrainConfig": "engine.decoder.config",
    "evaluate_decoder": "engine.decoder.evaluate",
    # errors a caller may catch
    "Cancelled": "engine.errors",
    "StoreError": "engine.errors",
    "SiteError": "engine.errors",
    "TaskInputError": "engine.tasks",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
