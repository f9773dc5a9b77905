"""The notebook of one information map: re-run it node by node, the map as a table, a check
against the exported rows, then one node's samples within epsilon, another site, and a distance
recomputed independently."""
from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat

from engine.notebook.cells import SETUP, TABLE, code, load_lines, md, notebook, options_source, precision_arg

if TYPE_CHECKING:
    from engine.explain.sweep import InformationMap


def map_notebook(m: InformationMap, model_ref: str, *, text: str | None = None, precision: str = "fp32",
                 task: str | None = None, prompts: str | None = None) -> nbformat.NotebookNode:
    """A notebook that re-runs `m` (an InformationMap) with run_map: the same model, input, nodes
    (site, position) and options (every field, seed and sampler included). precision: the
    inverter's (Inverter.precision) when the map was made; text: the input as given."""
    text = m.query if text is None else text
    nodes = [(r.site, r.position) for r in m.rows]
    header = (f"# Information map: `{m.query}`\n\n"
              f"Model `{model_ref}`; {len(nodes)} nodes x {m.options.candidates:,} candidates, {m.options.metric}, "
              f"epsilon {m.options.epsilon:g}, seed {m.options.seed}, sampler {m.options.sampler}.")
    run = "\n".join([
        "from engine import QueryOptions, find_model, get_site, load_inverter, run_map", "",
        load_lines(model_ref, task, prompts),
        f"TEXT = {text!r}",
        f"NODES = {nodes!r}  # (site, position)",
        options_source(m.options),
        f"PRECISION = {precision_arg(precision)!r}", "",
        "inv = load_inverter(entry, precision=PRECISION, decoder_optional=True)",
        "results = {}  # (site, position) -> the node's QueryResult",
        "",
        "",
        "def keep(reading, result, done, total):",
        "    results[reading.site, reading.position] = result",
        "",
        "",
        "nodes = [(get_site(inv.probed.config, s), p) for s, p in NODES]",
        "m = run_map(inv, TEXT, nodes, OPTIONS, on_row=keep)",
        'print(f"{len(m.rows)} nodes in {m.seconds:.1f} s")',
    ])
    table = TABLE + "\n\n\n" + (
        "rows = [{\"site\": r.site, \"position\": r.position, \"label\": r.label, \"in_epsilon\": r.in_epsilon,\n"
        "         \"candidates\": r.candidates, \"share\": r.share, \"reading\": r.reading(),\n"
        "         \"median_distance\": r.quantiles[1]} for r in m.rows]\n"
        "show_table(rows, limit=200)")
    exported = [(r.site, r.position, r.in_epsilon, r.candidates, r.reading(), round(r.quantiles[1], 6))
                for r in m.rows]
    check = (f"EXPORTED = {exported!r}  # (site, position, in epsilon, candidates, reading, median distance)\n\n"
             "mine = [(r.site, r.position, r.in_epsilon, r.candidates, r.reading(), r.quantiles[1]) for r in m.rows]\n"
             "same = len(mine) == len(EXPORTED) and all(\n"
             "    a[:5] == b[:5] and abs(a[5] - b[5]) <= 1e-5 for a, b in zip(mine, EXPORTED))\n"
             'print("reproduces the export:", "yes" if same else "no")')
    node = (
        "NODE = NODES[0]  # or any other (site, position) of the map\n"
        "result = results[NODE]\n"
        "within = [s for s in result.samples if s.in_epsilon]\n"
        'print(f"{NODE}: {result.summary()}")\n'
        "show_table([{\"rank\": s.rank, \"x\": s.multiplicity, \"distance\": s.distance, \"sample\": s.marked()}\n"
        "            for s in within], limit=30)")
    other = (
        "from engine import all_sites, run_query\n\n"
        "mapped = {s for s, _ in NODES}\n"
        "OTHER_SITE = next((s.short for s in (inv.sites or all_sites(inv.probed.config)) if s.short not in mapped),\n"
        "                  NODES[0][0])\n"
        "other = run_query(inv, TEXT, OTHER_SITE, NODE[1], OPTIONS)\n"
        'print(f"{OTHER_SITE} @ {NODE[1]}: {other.summary()}")')
    recompute = (
        "import torch\n\n"
        "site, bridge = get_site(inv.probed.config, NODE[0]), inv.probed.bridge\n"
        "device = next(bridge.parameters()).device\n\n\n"
        "def activation(tokens, position):\n"
        "    with torch.inference_mode():\n"
        "        _, cache = bridge.run_with_cache(torch.tensor([tokens], device=device), names_filter=site.hook)\n"
        "        a = cache[site.hook][0, position]\n"
        "        if site.kind == \"head\":\n"
        "            a = a[site.head] @ bridge.blocks[site.layer].attn.W_O[site.head]\n"
        "    return a.float()\n\n\n"
        "z_q = activation(result.query_tokens, result.query_position)\n"
        "s = result.samples[0]\n"
        "z = activation(s.tokens, s.compared_position)\n"
        "again = float((z - z_q).norm() / z_q.norm()) if result.metric == \"euclidean\" else \\\n"
        "    float(1 - torch.nn.functional.cosine_similarity(z, z_q, dim=0))\n"
        'print(f"closest sample: the map gave {s.distance:.6f}, recomputed {again:.6f}")')
    return notebook([
        md(header), code(SETUP),
        md("## The map\n\nEach node is one InversionView query with the map's options."), code(run),
        md("## The nodes"), code(table),
        md("## Same as the export?"), code(check),
        md("## Next steps\n\n### One node's samples within epsilon"), code(node),
        md("### Another site at the same position"), code(other),
        md("### Recompute a distance independently"), code(recompute),
    ])
