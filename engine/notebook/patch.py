"""The notebook of one activation-patching run: re-run it (each node alone, or the nodes added one
by one), the effects as a table, a check against the exported figures, then the top nodes
patched together, the two baselines recomputed from the model's logits, and one node patched by
hand with a forward hook."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import nbformat

from engine.notebook.cells import SETUP, TABLE, code, load_lines, md, notebook

if TYPE_CHECKING:
    from engine.patching.report import CumulativeReport, PatchReport
    from engine.patching.setup import PatchSetup

# The clean and corrupted metrics from the model's own logits, without the patching code.
BASELINES = '''\
import torch

bridge = model.bridge
device = next(bridge.parameters()).device


def metric(logits):
    """The run's metric from its logits at the answer position (d_vocab,)."""
    if setup.metric == "prob":
        return float(torch.softmax(logits.float(), dim=-1)[setup.answer])
    return float(logits[setup.answer] - logits[setup.corrupt_answer])


with torch.inference_mode():
    clean_logits = bridge(torch.tensor([setup.clean], device=device))[0, setup.answer_position]  # (d_vocab,)
    corrupt_logits = bridge(torch.tensor([setup.corrupt], device=device))[0, setup.answer_position]
print(f"clean: the report gave {report.clean:.6f}, recomputed {metric(clean_logits):.6f}")
print(f"corrupt: the report gave {report.corrupt:.6f}, recomputed {metric(corrupt_logits):.6f}")'''

# The residual-stream node with the largest share patched with a plain forward hook: the
# corrupted run's vector written into the clean run at that position.
BY_HAND = '''\
from engine import get_site

patched = {e.node: e.metric for e in ALONE.ranked()}  # each node alone, the largest share first
NODE = next((n for n in patched if n.split("@")[0].endswith(".post") or n.startswith("x0.pre")), None)
if NODE is None:
    print("no residual-stream node among the patched ones; name one, e.g. 'x0.post@3'")
else:
    site_name, position = NODE.split("@")
    position = int(position)
    hook = get_site(model.config, site_name).hook
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(torch.tensor([setup.corrupt], device=device), names_filter=hook)
        corrupt_vector = cache[hook][0, position].clone()  # (d_model,)

        def write(activation, hook):
            activation[:, position] = corrupt_vector
            return activation

        logits = bridge.run_with_hooks(torch.tensor([setup.clean], device=device), fwd_hooks=[(hook, write)])
    again = metric(logits[0, setup.answer_position])
    print(f"{NODE} patched by hand: {again:.6f}; the report gave {patched[NODE]:.6f}")'''


def patch_notebook(report: PatchReport | CumulativeReport, model_ref: str, setup: PatchSetup, *, text: str,
                   corrupt: str | None = None, flips: Sequence[tuple[int | str, int | str]] = (),
                   nodes: str | None = None, task: str | None = None,
                   prompts: str | None = None) -> nbformat.NotebookNode:
    """A notebook that re-runs `report` (a PatchReport from patch_nodes, or a CumulativeReport
    from patch_cumulative) with the same model, inputs, answer position and tokens, metric and
    nodes.

    setup: the PatchSetup the report was made from (its answer tokens are written as ids);
    text: the clean input as typed; corrupt: the corrupted input as typed, or None when it is the
    clean one with `flips` ((position, token) pairs, as flip_one takes them) applied; nodes: the
    nodes as given ("a0.0@13,a1.0@:"; None: every node up to the answer position)."""
    cumulative = hasattr(report, "steps")
    i = report.inputs
    show = "".join(i.clean_tokens)
    kind = (f"the nodes patched one on top of the other ({report.order})" if cumulative
            else "each node patched alone")
    header = (f"# Activation patching: `{show}`, corrupted at {i.changes()}\n\n"
              f"Model `{model_ref}`; {kind}; the answer at position {i.answer_position} (`{i.answer_label}`), "
              f"metric {i.metric} = {i.metric_words()}.\n\n"
              f"Exported: clean {report.clean:.4f}, corrupt {report.corrupt:.4f}, "
              f"{len(report.steps if cumulative else report.effects)} nodes.")
    names = ["find_model", "load_probed", "make_setup", "patch_cumulative" if cumulative else "patch_nodes"]
    if nodes is not None:
        names.append("parse_nodes")
    if corrupt is None:
        names.append("flip_one")
    lines = [f"from engine import {', '.join(sorted(names))}", "",
             load_lines(model_ref, task, prompts),
             f"TEXT = {text!r}  # the clean input"]
    if corrupt is None:
        lines.append(f"FLIPS = {[tuple(f) for f in flips]!r}  # (position, token): the clean input with these "
                     "replaced")
    else:
        lines.append(f"CORRUPT = {corrupt!r}  # the corrupted input, as many tokens as the clean one")
    answers = (f"ANSWER, CORRUPT_ANSWER = {setup.answer!r}, {setup.corrupt_answer!r}  # token ids of "
               f"{i.answer!r} and {i.corrupt_answer!r}")
    lines += [f"POSITION = {setup.answer_position!r}  # the answer position, {i.answer_label!r}: its logits are read",
              answers,
              f"METRIC = {setup.metric!r}  # logit_diff: logit[answer] - logit[corrupt answer]; prob: p(answer)",
              f"NODES = {nodes!r}  # SITE@POSITION, ...; None: every node up to the answer position"]
    if cumulative:
        lines.append(f"REVERSE = {report.order == 'backward'!r}  # True: the nodes added last to first")
    lines += ["", "model = load_probed(entry)", "task = model.task", "clean = task.parse_query(TEXT)"]
    if corrupt is None:
        lines += ["corrupt = clean", "for position, token in FLIPS:",
                  "    corrupt = flip_one(task, corrupt, position, token)"]
    else:
        lines.append("corrupt = task.tokenize(CORRUPT)")
    lines += ["setup = make_setup(task, clean, corrupt, position=POSITION, metric=METRIC, answer=ANSWER,",
              "                   corrupt_answer=CORRUPT_ANSWER)",
              "nodes = parse_nodes(model.config, task, clean, NODES) if NODES else None"]
    if cumulative:
        lines += ["report = patch_cumulative(model, setup, nodes, reverse=REVERSE)",
                  "EFFECTS = report.steps",
                  'print(report.line(), f"({report.passes} forward passes, {report.seconds:.2f} s)")']
    else:
        lines += ["report = patch_nodes(model, setup, nodes)",
                  "EFFECTS = report.effects",
                  'print(f"clean {report.clean:.4f}, corrupt {report.corrupt:.4f}; {len(EFFECTS)} nodes, "',
                  '      f"{report.passes} forward passes, {report.seconds:.2f} s")']
    run = "\n".join(lines)
    if cumulative:
        rows = ("rows = [{\"+ node\": s.node, \"label\": s.position_label, \"patched\": s.metric, \"moved\": s.moved,\n"
                "         \"share\": s.share} for s in report.steps]\n"
                "show_table(rows, limit=100)")
    else:
        rows = ("rows = [{\"node\": e.node, \"label\": e.position_label, \"patched\": e.metric, \"share\": e.share}\n"
                "        for e in report.ranked()]  # the largest share of the effect first\n"
                "show_table(rows, limit=30)")
    table = TABLE + "\n\n\n" + rows
    effects = report.steps if cumulative else report.effects
    exported = [(e.node, round(e.metric, 6)) for e in effects]
    check = (f"EXPORTED = {exported!r}  # (node, patched metric), in the order patched\n"
             f"EXPORTED_CLEAN, EXPORTED_CORRUPT = {round(report.clean, 6)!r}, {round(report.corrupt, 6)!r}\n"
             f"EXPORTED_CORRUPT_TOKENS = {list(i.corrupt_tokens)!r}\n\n"
             "mine = [(e.node, e.metric) for e in EFFECTS]\n"
             "differ = [n for (n, v), (m, w) in zip(mine, EXPORTED) if n != m or abs(v - w) > 1e-4]\n"
             "same = (len(mine) == len(EXPORTED) and not differ and abs(report.clean - EXPORTED_CLEAN) <= 1e-4\n"
             "        and abs(report.corrupt - EXPORTED_CORRUPT) <= 1e-4\n"
             "        and report.inputs.corrupt_tokens == EXPORTED_CORRUPT_TOKENS)\n"
             'print("reproduces the export:", "yes" if same else f"no ({differ[:5] or \'count or baselines\'})")')
    if cumulative:
        together = (
            "from engine import patch_nodes\n\n"
            "alone = patch_nodes(model, setup, nodes)\n"
            "show_table([{\"node\": e.node, \"label\": e.position_label, \"patched\": e.metric, \"share\": e.share}\n"
            "            for e in alone.ranked()], limit=30)")
        together_md = "### Each node alone"
    else:
        together = (
            "from engine import parse_nodes, patch_cumulative\n\n"
            "TOP = 5  # the nodes with the largest shares, added one on top of the other\n"
            "top = parse_nodes(model.config, task, clean, \",\".join(e.node for e in report.ranked()[:TOP]))\n"
            "route = patch_cumulative(model, setup, top)\n"
            "print(route.line())\n"
            "show_table([{\"+ node\": s.node, \"moved\": s.moved, \"share\": s.share} for s in route.steps])")
        together_md = "### The top nodes together\n\nHow much of the effect do the five largest carry between them?"
    return notebook([
        md(header), code(SETUP),
        md("## The patching run\n\nThe clean input runs; a node's activation is replaced by the corrupted run's. "
           "The share is (patched - clean) / (corrupt - clean): 1 when the node carries the whole effect."),
        code(run),
        md("## The effects"), code(table),
        md("## Same as the export?"), code(check),
        md("## Next steps\n\n" + together_md), code(together),
        md("### The two baselines from the model's logits"), code(BASELINES),
        md("### One node patched by hand\n\nThe residual-stream node with the largest share, written with a plain "
           "forward hook."),
        code(BY_HAND.replace("ALONE", "alone" if cumulative else "report")),
    ])
