"""The notebook of one InversionView query: re-run it, the samples as a table, a check against
the exported samples, then another site, an independent distance and the samples within epsilon."""
from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat

from engine.notebook.cells import SETUP, TABLE, code, load_lines, md, notebook, options_source, precision_arg

if TYPE_CHECKING:
    from engine.query.types import QueryOptions, QueryResult

CHECKED_ROWS = 20  # exported samples the notebook checks its own against

# An activation read straight from the model's hooks, independently of the engine's readers.
ACTIVATION = '''\
import torch

from engine import get_site

site = get_site(inv.probed.config, SITE)
bridge = inv.probed.bridge
device = next(bridge.parameters()).device


def activation(tokens, position):
    """The site's activation (d_model,) for one token list at one position, from the model's hooks."""
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(torch.tensor([tokens], device=device), names_filter=site.hook)
        a = cache[site.hook][0, position]
        if site.kind == "head":  # a head's output: its z through its rows of W_O
            a = a[site.head] @ bridge.blocks[site.layer].attn.W_O[site.head]
    return a.float()


def distance(z, z_q, metric):
    """euclidean: ||z - z_q|| / ||z_q||; cosine: 1 - cos(z_q, z)."""
    if metric == "euclidean":
        return float((z - z_q).norm() / z_q.norm())
    return float(1 - torch.nn.functional.cosine_similarity(z, z_q, dim=0))


z_q = activation(result.query_tokens, result.query_position)
for s in result.samples[:5]:
    again = distance(activation(s.tokens, s.compared_position), z_q, result.metric)
    print(f"rank {s.rank}: the query gave {s.distance:.6f}, recomputed {again:.6f}  {s.marked()}")'''


def options_of(result: QueryResult, asked: QueryOptions | None = None) -> QueryOptions:
    """The QueryOptions that drew `result`: `asked` when given (the request's own, with the search's
    settings), else rebuilt from what the result records (candidates, schedule, metric, epsilon,
    seed, same_label, sampler; the search's other settings at their defaults)."""
    from engine.query.types import QueryOptions, parse_schedule

    if asked is not None:
        return asked
    schedule = parse_schedule(result.schedule) if result.schedule else QueryOptions().schedule
    return QueryOptions(candidates=result.candidates, schedule=schedule, metric=result.metric, epsilon=result.epsilon,
                        seed=result.seed, same_label=result.same_label, sampler=result.sampler)


def query_notebook(result: QueryResult, model_ref: str, options: QueryOptions, *, text: str | None = None,
                   task: str | None = None, prompts: str | None = None) -> nbformat.NotebookNode:
    """A notebook that re-runs `result` (a QueryResult) with the same model, query, site,
    position, options (every field, seed and sampler included) and sampling precision.

    model_ref: a model name, folder or Hugging Face cache id (model_ref(entry)); text: the query
    as typed (default: result.query); task, prompts: as given to find_model / --prompts."""
    label = result.query_labels[result.query_position]
    text = result.query if text is None else text
    header = (f"# InversionView: `{result.query}` at {result.site_short}, position {result.query_position} "
              f"(`{label}`)\n\n"
              f"Model `{model_ref}`, {result.metric} distance, epsilon {result.epsilon:g}, "
              f"{result.candidates:,} candidates, seed {result.seed}, drawn by the {result.sampler} "
              f"(asked: {options.sampler}), sampling in {result.precision or 'fp32'}.\n\n"
              f"Exported: {result.summary()}.")
    run = "\n".join([
        "from engine import QueryOptions, find_model, load_inverter, run_query", "",
        load_lines(model_ref, task, prompts),
        f"TEXT = {text!r}",
        f"SITE = {result.site_short!r}  # {result.site_id}",
        f"POSITION = {result.query_position!r}  # {label!r}",
        options_source(options),
        f"PRECISION = {precision_arg(result.precision or 'fp32')!r}  # the sampling precision of the export", "",
        "inv = load_inverter(entry, precision=PRECISION, decoder_optional=True)",
        "result = run_query(inv, TEXT, SITE, POSITION, OPTIONS)",
        'print(f"{result.summary()}; drawn by the {result.sampler}; {result.seconds:.2f} s")',
    ])
    table = TABLE + "\n\n\n" + (
        "rows = [{\"rank\": s.rank, \"x\": s.multiplicity, \"distance\": s.distance, \"in_epsilon\": s.in_epsilon,\n"
        "         \"fact\": s.fact, \"sample\": s.marked()} for s in result.samples]\n"
        "show_table(rows)")
    exported = [(s.text, round(s.distance, 6)) for s in result.samples[:CHECKED_ROWS]]
    check = (f"EXPORTED = {exported!r}  # (sample, distance), the first {CHECKED_ROWS} rows\n\n"
             "mine = [(s.text, s.distance) for s in result.samples[:len(EXPORTED)]]\n"
             "differ = [i + 1 for i, ((a, d), (b, e)) in enumerate(zip(mine, EXPORTED))\n"
             "          if a != b or abs(d - e) > 1e-5]\n"
             "same = len(mine) == len(EXPORTED) and not differ\n"
             'print("reproduces the export:", "yes" if same else f"no (rows {differ or \'missing\'})")')
    other = (
        "from engine import all_sites\n\n"
        "sites = [s.short for s in (inv.sites or all_sites(inv.probed.config))]\n"
        "OTHER_SITE = sites[(sites.index(SITE) + 1) % len(sites)] if SITE in sites else sites[0]  # or name one\n"
        "other = run_query(inv, TEXT, OTHER_SITE, POSITION, OPTIONS)\n"
        "for r in (result, other):\n"
        '    print(f"{r.site_short:<8} {r.summary()}")')
    within = (
        "within = [s for s in result.samples if s.in_epsilon]\n"
        'print(f"{len(within)} distinct samples within epsilon {result.epsilon:g}:")\n'
        "show_table([r for r in rows if r[\"in_epsilon\"]], limit=50)\n\n"
        "try:  # as a data frame, where pandas is installed\n"
        "    import pandas as pd\n\n"
        "    frame = pd.DataFrame(rows)\n"
        "except ImportError:\n"
        "    frame = rows\n"
        "# from engine import write_csv; write_csv(result, \"samples.csv\")  # every sample, by the CSV book")
    return notebook([
        md(header), code(SETUP),
        md("## The query\n\nThe same model, query, site, position and options as the export; the same seed "
           "gives the same samples."),
        code(run),
        md("## The samples"), code(table),
        md("## Same as the export?"), code(check),
        md("## Next steps\n\n### Compare another site"), code(other),
        md("### Recompute a distance independently\n\nThe activations read straight from the model's hooks."),
        code(ACTIVATION),
        md("### The samples within epsilon"), code(within),
    ])
