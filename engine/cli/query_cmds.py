"""`query`: one InversionView query from the command line, ranked samples printed, optional CSV."""
from __future__ import annotations

from pathlib import Path

from engine.cli import values
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import PROMPTS, TASKS


def add_parsers(sub) -> None:
    from engine.query.types import METRICS

    p = sub.add_parser("query", help="sample inputs whose activation at a site matches the query's")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or folder (default: {DEFAULT_MODEL})")
    p.add_argument("--task", choices=list(TASKS),
                   help="which task a Hugging Face checkpoint is, when its special ids do not say")
    p.add_argument("--prompts", choices=PROMPTS, help="a text model's inputs are this prompt distribution (ioi)")
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
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--top", type=values.rows, default=30, help="rows to print (default 30)")
    p.add_argument("--csv", type=Path, help="write every distinct sample to this CSV file")
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=query_cmd)


def text_bar(distance: float, width: int = 20) -> str:
    """The paper's distance bar: length proportional to min(D / 0.5, 1)."""
    n = round(min(distance / 0.5, 1.0) * width)
    return "#" * n + "." * (width - n)


def query_cmd(args) -> int:
    from engine.errors import OutputError
    from engine.query.run import load_inverter, run_query
    from engine.query.types import default_options, parse_schedule
    from engine.tasks import get_task

    if args.csv is not None and not args.csv.parent.is_dir():  # fail before minutes of work
        raise OutputError(f"cannot write {args.csv}: folder {args.csv.parent} does not exist")
    schedule = parse_schedule(args.schedule) if args.schedule is not None else None  # a bad one: before loading
    from engine.store.folders import find_model, with_prompts

    entry = with_prompts(find_model(args.model, task=args.task), args.prompts)
    given = {k: v for k, v in (("candidates", args.candidates), ("metric", args.metric), ("schedule", schedule))
             if v is not None}
    options = default_options(get_task(entry.task), epsilon=args.epsilon, seed=args.seed, colour=False,  # no colours
                              **given)  # in a terminal
    options.check()
    inv = load_inverter(entry, device=args.device)
    r = run_query(inv, args.text, args.site, args.position, options)
    fact = inv.probed.task.fact_name
    label = r.query_labels[r.query_position]
    print(f"query {r.query} at {r.site_short} ({r.site_id}), position {r.query_position} ({label!r}); "
          f"model {r.model}, {r.metric}, epsilon {r.epsilon:g}")
    print(f"{'rank':>4} {'x':>4}  {'distance':>8}  {'bar':<20}  {fact:<11} sample")
    divider_done = False
    for s in r.samples[: args.top]:
        if not s.in_epsilon and not divider_done:
            print(f"{'':->4} epsilon {r.epsilon:g} " + "-" * 40)
            divider_done = True
        print(f"{s.rank:>4} {s.multiplicity:>4}  {s.distance:>8.4f}  {text_bar(s.distance)}  {s.fact:<11} {s.marked()}")
    if len(r.samples) > args.top:
        print(f"... {len(r.samples) - args.top} more distinct samples")
    print(f"{r.summary()}; {r.seconds:.2f} s")
    if args.csv is not None:
        from engine.store.export import write_csv

        write_csv(r, args.csv)
        print(f"wrote {args.csv}")
    return 0
