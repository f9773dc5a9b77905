"""The notebook of one flow graph: rebuild it, the route as a table, a check against the
exported route, then the logit lens at the output position, another node's route and the
model's own prediction recomputed from its logits."""
from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat

from engine.notebook.cells import SETUP, TABLE, code, load_lines, md, notebook

if TYPE_CHECKING:
    from engine.flow.graph import FlowGraph


def flow_notebook(graph: FlowGraph, model_ref: str, text: str, *, target: str | int | None = None,
                  task: str | None = None) -> nbformat.NotebookNode:
    """A notebook that rebuilds `graph` (a FlowGraph) with flow_for_query: the same model, input,
    target (None: the model's own prediction at each position), output position, threshold and
    readout size. text: the input as given to flow_for_query."""
    out_site, out_pos = graph.output
    top_k = len(graph.nodes[0].top) if graph.nodes else 5
    header = (f"# Flow graph: `{''.join(graph.token_labels)}`\n\n"
              f"Model `{model_ref}`; the route to {out_site} at position {out_pos} "
              f"(`{graph.position_labels[out_pos]}`), edges of weight >= {graph.threshold:g}; "
              f"exported with {len(graph.route)} route edges.")
    run = "\n".join([
        "from engine import find_model, flow_for_query, load_probed", "",
        load_lines(model_ref, task, None),
        f"TEXT = {text!r}",
        f"TARGET = {target!r}  # None: the model's own prediction at each position",
        f"POSITION = {out_pos!r}  # the route's output position, {graph.position_labels[out_pos]!r}",
        f"THRESHOLD = {graph.threshold!r}",
        f"TOP_K = {top_k!r}", "",
        "model = load_probed(entry)",
        "graph = flow_for_query(model, TEXT, target=TARGET, position=POSITION, threshold=THRESHOLD, top_k=TOP_K)",
        "out_site, out_pos = graph.output",
        "node = graph.node(out_site, out_pos)",
        'print(f"{out_site} @ {out_pos} predicts {graph.label(node.top[0][0])!r} (p {node.top[0][1]:.3f}); "',
        '      f"the route has {len(graph.route)} edges")',
    ])
    table = TABLE + "\n\n\n" + (
        "def at(key):\n"
        "    return f\"{key[0]}[{key[1]} {graph.token_labels[key[1]]!r}]\"\n\n\n"
        "route = [{\"from\": at(src), \"to\": at(dst), \"weight\": w} for src, dst, w in graph.route]\n"
        "show_table(route, limit=50)")
    exported = [(list(src), list(dst), round(float(w), 6)) for src, dst, w in graph.route]
    check = (f"EXPORTED = {exported!r}  # the route: (from, to, weight)\n\n"
             "mine = [(list(src), list(dst), w) for src, dst, w in graph.route]\n"
             "same = len(mine) == len(EXPORTED) and all(\n"
             "    a == c and b == d and abs(w - x) <= 1e-5 for (a, b, w), (c, d, x) in zip(mine, EXPORTED))\n"
             'print("reproduces the export:", "yes" if same else "no")')
    lens = (
        "lens = [{\"site\": n.site.short, \"top\": graph.label(n.top[0][0]), \"p\": n.top[0][1], \"norm\": n.norm}\n"
        "        for n in graph.nodes if n.position == out_pos]\n"
        "show_table(lens, limit=100)")
    other = (
        "OTHER = (f\"x{max(graph.n_layers - 2, 0)}.post\", out_pos)  # or name another node: (site, position)\n"
        "show_table([{\"from\": at(s), \"to\": at(d), \"weight\": w} for s, d, w in graph.route_to(OTHER)], limit=50)")
    logits = (
        "import torch\n\n"
        "with torch.inference_mode():\n"
        "    device = next(model.bridge.parameters()).device\n"
        "    logits = model.bridge(torch.tensor([graph.tokens], device=device))[0, out_pos]\n"
        "own = int(logits.argmax())\n"
        'print(f"the model predicts {graph.label(own)!r} at position {out_pos}; the graph\'s output node: "\n'
        '      f"{graph.label(node.top[0][0])!r}")')
    return notebook([
        md(header), code(SETUP),
        md("## The flow graph\n\nOne forward pass: every node's logit-lens readout and the edges' contributions."),
        code(run),
        md("## The route"), code(table),
        md("## Same as the export?"), code(check),
        md("## Next steps\n\n### Every site at the output position (the logit lens)"), code(lens),
        md("### The route to another node"), code(other),
        md("### The output recomputed from the model's logits"), code(logits),
    ])
