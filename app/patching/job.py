"""The "patch" job, run on the engine thread: build the set-up as `python main.py patch` does,
patch every node, return the PatchReport (plain data: it crosses to the GUI thread as is).

params: text (the clean query), and either corrupt (a text, tokenized as the model reads it: a
corruption need not be well formed) or flips ([position, token] pairs applied to the clean
input, which keeps a text model's tokens exactly as flipped); position (the answer position,
default the task's) and metric ("logit_diff" or "prob"). Plain Python; engine.patching (and
torch through it) is imported on the engine thread, never at app start-up.
"""
from __future__ import annotations


def setup_from_params(task, params: dict):
    """A checked PatchSetup; TaskInputError (one line) for inputs that cannot be compared."""
    from engine.patching.setup import flip_one, make_setup

    clean = task.parse_query(params["text"])
    if params.get("flips"):
        corrupt = clean
        for position, token in params["flips"]:
            corrupt = flip_one(task, corrupt, position, token)
    else:
        corrupt = task.tokenize(params.get("corrupt", ""))
    return make_setup(task, clean, corrupt, position=params.get("position"),
                      metric=params.get("metric", "logit_diff"))


def run_patch(inv, params: dict, report, cancel):
    """Every node patched alone; progress as report(None, done, total). A cancelled run returns
    None (nobody listens any more), so it is not logged as an engine failure."""
    from engine.errors import Cancelled
    from engine.patching.run import patch_nodes

    setup = setup_from_params(inv.probed.task, params)
    try:
        return patch_nodes(inv.probed, setup, on_progress=lambda done, total: report(None, done, total),
                           cancel=cancel)
    except Cancelled:
        return None
