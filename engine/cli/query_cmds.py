"""`query`: one InversionView query from the command line, ranked samples printed, optional CSV
or a JSON file for the paper's web viewer; `show-json`: such a JSON file printed the same way."""
from __future__ import annotations

from engine.cli import values
from engine.cli.model_flags import add_model_flags
from engine.tasks import TASKS


def add_parsers(sub) -> None:
    from engine.query.types import METRICS, SAMPLERS

    p = sub.add_parser("query", help="sample inputs whose activation at a site matches the query's")
    add_model_flags(p)
    p.add_argument("--text", required=True, help='the query input, e.g. "Baiaigiaaggi|g:3"')
    p.add_argument("--site", required=True, help="site short name (x1.post, a0.0, m1, ...) or hook name")
    p.add_argument("--position", required=True, help="position index, or label such as ':' or A1")
    p.add_argument("--candidates", type=values.candidates,
                   help="candidates to sample (default: the paper's, 1024 for the tasks, 768 for text models)")
    p.add_argument("--epsilon", type=values.epsilon, default=0.1)
    p.add_argument("--metric", choices=METRICS,
                   help="distance (default: the paper's, euclidean for the tasks, cosine for text models)")
    p.add_argument("--schedule",
                   help="'auto' (the paper's 4 settings for the tasks), 'text' (its 3 for text models), or "
                        "T:NOISE pairs, e.g. 1:0,2:0.1 (default: the model's)")
    p.add_argument("--same-label", action="store_true",
                   help="compare samples only at positions with the query position's label (IOI: END; a text "
                        "model: the same token), not at every position")
    p.add_argument("--sampler", choices=SAMPLERS, default="auto",
                   help="where candidates come from: the trained decoder, the training-free local search around "
                        "the query, or auto (default): the decoder where it was trained on the site, else the search")
    p.add_argument("--chains", type=values.chains, default=64,
                   help="the search's chains, each proposing one edit per step (default 64)")
    p.add_argument("--search-temperature", type=values.search_temperature, default=0.25,
                   help="the search's Metropolis temperature inside the epsilon wall, in units of epsilon "
                        "(default 0.25; 0: take any move that stays within epsilon)")
    p.add_argument("--keep", type=values.positions, default=(),
                   help="query positions the search never changes, e.g. 1,3,5 ('keep these tokens')")
    p.add_argument("--no-grammar", action="store_true",
                   help="let the search re-run proposals the task's grammar rejects (by default they are dropped)")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--top", type=values.rows, default=30, help="rows to print (default 30)")
    p.add_argument("--csv", type=values.path, help="write every distinct sample to this CSV file")
    p.add_argument("--summary", action="store_true",
                   help="say what the samples within epsilon share with the query: each feature's share "
                        "against its share among all candidates, with a verdict (the decoder's samples); the "
                        "flip test per feature and per token (the search's samples)")
    p.add_argument("--json", type=values.path, metavar="FILE",
                   help="write the result as JSON: the query, how it was drawn, the summary and every sample")
    p.add_argument("--paper-json", type=values.path, metavar="FILE",
                   help="also write the samples as the InversionView paper's web viewer reads them (a cached-"
                        "generation JSON file, with prob-diff colouring); a folder gets the file name the viewer "
                        "looks for")
    p.add_argument("--notebook", type=values.path, metavar="FILE",
                   help="write a Jupyter notebook that re-runs this query through the engine's API (same model, "
                        "options and seed), shows the samples as a table and checks them against these")
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=query_cmd)

    p = sub.add_parser("show-json", help="print an InversionView paper web-viewer JSON file (cached generation) "
                                         "as query prints its samples")
    p.add_argument("file", type=values.path,
                   help="a cached-generation JSON file, e.g. blocks.1.hook_resid_post-19-Auto-dist.json")
    p.add_argument("--top", type=values.rows, default=30, help="rows to print (default 30)")
    p.add_argument("--epsilon", type=values.epsilon, default=0.1,
                   help="where the divider goes (default 0.1; the paper used 0.25 for factual recall)")
    p.add_argument("--task", choices=list(TASKS),
                   help="read the tokens as this task's (default: the task whose vocabulary has them all)")
    p.set_defaults(func=show_json_cmd)


def text_bar(distance: float, width: int = 20) -> str:
    """The paper's distance bar: length proportional to min(D / 0.5, 1)."""
    n = round(min(distance / 0.5, 1.0) * width)
    return "#" * n + "." * (width - n)


def print_result(r, top: int, fact: str, timing: bool = True) -> None:
    """A result as the terminal shows it: a header, ranked rows with the epsilon divider, a summary."""
    from engine.cli.printing import printable  # a file's tokens and names are shown, never obeyed by the terminal

    label = r.query_labels[r.query_position]
    print(f"query {printable(r.query)} at {printable(r.site_short)} ({printable(r.site_id)}), position "
          f"{r.query_position} ({label!r}); model {printable(r.model) or '(not recorded)'}, {r.metric}, "
          f"epsilon {r.epsilon:g}")
    if r.sampler == "search":
        print(r.sampler_settings)
    print(f"{'rank':>4} {'x':>4}  {'distance':>8}  {'bar':<20}  {fact:<11} sample")
    divider_done = False
    for s in r.samples[:top]:
        if not s.in_epsilon and not divider_done:
            print(f"{'':->4} epsilon {r.epsilon:g} " + "-" * 40)
            divider_done = True
        near = f"  ({s.edits} edit{'s' * (s.edits != 1)})" if s.edits >= 0 else ""
        print(f"{s.rank:>4} {s.multiplicity:>4}  {s.distance:>8.4f}  {text_bar(s.distance)}  {printable(s.fact):<11} "
              f"{printable(s.marked())}{near}")
    if len(r.samples) > top:
        print(f"... {len(r.samples) - top} more distinct samples")
    print(f"{r.summary()}; {r.seconds:.2f} s" if timing else r.summary())


def print_summary(r) -> None:
    """The preimage summary: a line, then each feature's share within epsilon against all candidates;
    for the search's samples the flip test instead (engine/explain/flips.py)."""
    if r.sampler == "search":
        print_flip_test(r)
        return
    from engine.explain.summary import summarize

    summary = summarize(r)
    print(summary.line())
    print(f"{'feature':<16} {'query':<12} {'within ε':>9} {'all':>6}  verdict")
    for f in summary.features:
        print(f"{f.name[:16]:<16} {str(f.query_value)[:12]:<12} {f.share:>9.0%} {f.base_rate:>6.0%}  {f.verdict}")


def print_flip_test(r) -> None:
    """The flip test: per feature and per query token, how often the search changed it and how
    often the input stayed within epsilon all the same."""
    from engine.explain.flips import MIN_CHANGES, REQUIRED_SHARE, flip_test

    test = flip_test(r)
    print(test.line())
    if test.warning:
        print(f"warning: {test.warning}")
    print(f"required / must keep: changed at least {MIN_CHANGES} times and within epsilon at most "
          f"{REQUIRED_SHARE:.0%} of those; a feature held only jointly with another reads as each part required")
    print(f"{'feature':<16} {'query':<12} {'changed':>8} {'within ε':>9}  verdict")
    for f in test.features:
        print(f"{f.name[:16]:<16} {str(f.query_value)[:12]:<12} {f.changed:>8} {f.within:>9}  {f.verdict}")
    print(f"{'position':<16} {'token':<12} {'changed':>8} {'within ε':>9}  verdict")
    for t in test.tokens:
        print(f"{t.name.split(':')[0]:<16} {t.query_value[:12]:<12} {t.changed:>8} {t.within:>9}  {t.verdict}")


def query_cmd(args) -> int:
    from engine.cli.outputs import check_output_file
    from engine.query.run import load_inverter, run_query
    from engine.query.types import default_options, parse_schedule
    from engine.tasks import get_task

    for out in (args.csv, args.json, args.notebook):  # fail before minutes of work
        check_output_file(out)
    check_output_file(args.paper_json, folder_ok=True)  # a folder gets the file name the viewer looks for
    schedule = parse_schedule(args.schedule) if args.schedule is not None else None  # a bad one: before loading
    from engine.store.folders import find_model, with_prompts

    entry = with_prompts(find_model(args.model, task=args.task), args.prompts)
    given = {k: v for k, v in (("candidates", args.candidates), ("metric", args.metric), ("schedule", schedule))
             if v is not None}
    # no colours in a terminal; the paper's viewer shows them, so a --paper-json file gets the real prob-diffs
    options = default_options(get_task(entry.task), epsilon=args.epsilon, seed=args.seed,
                              colour=args.paper_json is not None, same_label=args.same_label,
                              sampler=args.sampler, chains=args.chains, search_temperature=args.search_temperature,
                              keep=args.keep, grammar=not args.no_grammar, **given)
    options.check()
    # a model without a decoder loads too: the search queries it (asked for, the decoder says how to train one)
    inv = load_inverter(entry, device=args.device, decoder_optional=True)
    r = run_query(inv, args.text, args.site, args.position, options)
    print_result(r, args.top, inv.probed.task.fact_name)
    if args.summary:
        print_summary(r)
    if args.csv is not None:
        from engine.store.export import write_csv

        write_csv(r, args.csv)
        print(f"wrote {args.csv}")
    if args.json is not None:
        from engine.store.export import write_json

        print(f"wrote {write_json(r, args.json)}")
    if args.paper_json is not None:
        from engine.store.paper_json import write_paper_json

        pieces = inv.probed.task.vocab.token_strings(r.query_tokens)
        print(f"wrote {write_paper_json(r, args.paper_json, query_pieces=pieces)}")
    if args.notebook is not None:
        from engine.notebook import model_ref, query_notebook, write_notebook

        nb = query_notebook(r, model_ref(entry), options, text=args.text, task=args.task, prompts=args.prompts)
        print(f"wrote {write_notebook(nb, args.notebook)}")
    return 0


def show_json_cmd(args) -> int:
    from engine.store.paper_json import read_paper_json

    r = read_paper_json(args.file, task=args.task, epsilon=args.epsilon)
    fact = TASKS[r.task].fact_name if r.task in TASKS else "fact"
    print_result(r, args.top, fact, timing=False)
    return 0
