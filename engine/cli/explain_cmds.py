"""`sweep`: the information map of one input on the command line, a row per (site, position)."""
from __future__ import annotations

import sys
from pathlib import Path

from engine.cli import values
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import PROMPTS, TASKS


def add_parsers(sub) -> None:
    from engine.explain.sweep import SWEEP_CANDIDATES
    from engine.query.types import METRICS

    p = sub.add_parser("sweep", help="InversionView at every (site, position) of one input: what each node's "
                                     "preimage shares (the information map)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name or folder (default: {DEFAULT_MODEL})")
    p.add_argument("--task", choices=list(TASKS),
                   help="which task a Hugging Face checkpoint is, when its special ids do not say")
    p.add_argument("--prompts", choices=PROMPTS, help="a text model's inputs are this prompt distribution (ioi)")
    p.add_argument("--text", required=True, help='the input, e.g. "Baiaigiaaggi|g:3"')
    p.add_argument("--sites", type=values.site_list, metavar="A,B,...",
                   help="sites to map (default: every site the decoder was trained on)")
    p.add_argument("--positions", type=_position_list, metavar="P,Q,...",
                   help="positions to map, as indices or labels (default: every position but BOS/EOS/PAD)")
    p.add_argument("--candidates", type=values.candidates, default=SWEEP_CANDIDATES,
                   help=f"candidates per node (default {SWEEP_CANDIDATES})")
    p.add_argument("--epsilon", type=values.epsilon, default=0.1)
    p.add_argument("--metric", choices=METRICS, help="distance (default: the model's, as for query)")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--csv", type=Path, help="write the map, a row per node, to this CSV file")
    p.add_argument("--json", type=Path, help="write the map as JSON")
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=sweep_cmd)


def _position_list(text: str) -> tuple[str, ...]:
    import argparse

    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    if not parts:
        raise argparse.ArgumentTypeError(f"expected positions separated by commas (indices or labels), got {text!r}")
    return parts


def format_row(r) -> str:
    """'x1.post  :     15  in ε  34%  count = 3 (100%, all 63%) shared  D 0.03/0.15/0.41'."""
    q = "/".join(f"{d:.2f}" for d in r.quantiles)
    told = (f"{r.top.name} = {r.top.query_value} ({r.top.share:.0%}, all {r.top.base_rate:.0%}) {r.top.verdict}"
            if r.top else r.reading())
    return f"{r.site:<8} {r.label[:8]!s:<8} {r.position:>3}  in ε {r.share:4.0%}  {told:<44}  D {q}"


def sweep_cmd(args) -> int:
    import threading

    from engine.cli.progress import ProgressBar
    from engine.errors import OutputError
    from engine.explain.sweep import map_nodes, run_map, sweep_options
    from engine.query.run import load_inverter
    from engine.store.export import write_map_csv, write_map_json
    from engine.store.folders import find_model, with_prompts

    for path in (args.csv, args.json):
        if path is not None and not path.parent.is_dir():  # fail before minutes of work
            raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    entry = with_prompts(find_model(args.model, task=args.task), args.prompts)
    inv = load_inverter(entry, device=args.device)
    task = inv.probed.task
    given = {"metric": args.metric} if args.metric else {}
    options = sweep_options(task, candidates=args.candidates, epsilon=args.epsilon, seed=args.seed, **given)
    ids = task.parse_query(args.text)
    nodes = map_nodes(inv, ids, list(args.sites) if args.sites else None,
                      list(args.positions) if args.positions else None)
    print(f"map of {task.detokenize(ids)} on {entry.name}: {len(nodes)} nodes x {options.candidates} candidates, "
          f"{options.metric}, epsilon {options.epsilon:g}, seed {options.seed}")
    bar = ProgressBar("map", stream=sys.stderr)
    stop = threading.Event()

    def on_row(reading, result, done, total):
        print(format_row(reading), flush=True)
        bar.update(done, total, result.seconds)

    try:
        m = run_map(inv, args.text, nodes, options, on_row=on_row, cancel=stop)
    except KeyboardInterrupt:  # the rows so far are printed; nothing else to keep
        bar.close()
        print("interrupted", file=sys.stderr)
        return 130
    bar.close()
    shared = sum(1 for r in m.rows if r.top is not None and r.top.verdict == "shared")
    print(f"{len(m.rows)} of {len(nodes)} nodes in {m.seconds:.1f} s; {shared} share a feature of the input")
    if args.csv is not None:
        print(f"wrote {write_map_csv(m, args.csv)}")
    if args.json is not None:
        print(f"wrote {write_map_json(m, args.json)}")
    return 0
