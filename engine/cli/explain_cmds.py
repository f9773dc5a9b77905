"""`sweep`: the information map of one input on the command line, a row per (site, position)."""
from __future__ import annotations

import sys

from engine.cli import values
from engine.cli.model_flags import add_model_flags


def add_parsers(sub) -> None:
    from engine.explain.sweep import SWEEP_CANDIDATES
    from engine.query.types import METRICS, SAMPLERS

    p = sub.add_parser("sweep", help="InversionView at every (site, position) of one input: what each node's "
                                     "preimage shares (the information map)")
    add_model_flags(p)
    p.add_argument("--text", required=True, help='the input, e.g. "Baiaigiaaggi|g:3"')
    p.add_argument("--sites", type=values.site_list, metavar="A,B,...",
                   help="sites to map (default: every site the decoder was trained on)")
    p.add_argument("--positions", type=_position_list, metavar="P,Q,...",
                   help="positions to map, as indices or labels (default: every position but BOS/EOS/PAD)")
    p.add_argument("--candidates", type=values.candidates, default=SWEEP_CANDIDATES,
                   help=f"candidates per node (default {SWEEP_CANDIDATES})")
    p.add_argument("--epsilon", type=values.epsilon, default=0.1)
    p.add_argument("--metric", choices=METRICS, help="distance (default: the model's, as for query)")
    p.add_argument("--same-label", action="store_true",
                   help="compare samples only at positions with the query position's label (IOI: END; a text "
                        "model: the same token), not at every position")
    p.add_argument("--sampler", choices=SAMPLERS, default="auto",
                   help="each node's candidates: the decoder, the local search, or auto (default): the decoder "
                        "where it was trained on the site, else the search (a model with no decoder maps too)")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--csv", type=values.path, help="write the map, a row per node, to this CSV file")
    p.add_argument("--json", type=values.path, help="write the map as JSON")
    p.add_argument("--notebook", type=values.path, metavar="FILE",
                   help="write a Jupyter notebook that re-runs this map through the engine's API (same nodes, "
                        "options and seed), shows it as a table and checks it against this one")
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=sweep_cmd)

    p = sub.add_parser("ioi-circuit", help="the IOI circuit of a model that follows the IOI prompts: direct logit "
                                           "attribution, attention, patching, and what InversionView reads there")
    p.add_argument("--model", type=values.model_name, default="ioi",
                   help="a model whose inputs are the IOI prompts (default: ioi)")
    p.add_argument("--count", type=values.queries, default=200, help="held-out prompts for attribution (default 200)")
    p.add_argument("--patched", type=values.queries, default=50, help="prompts patched (default 50)")
    p.add_argument("--queries", type=values.queries, default=20,
                   help="held-out prompts queried with InversionView per site (default 20; needs a decoder)")
    p.add_argument("--candidates", type=values.candidates, default=256, help="candidates per query (default 256)")
    p.add_argument("--no-inversion", action="store_true", help="skip the InversionView readings")
    p.add_argument("--json", type=values.path, help="write every figure as JSON")
    p.add_argument("--record", action="store_true", help="store the figures in the model's record and CARD.md")
    p.add_argument("--into-bundled", action="store_true", help="allow --record to write into a bundled model")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=ioi_circuit_cmd)


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

    from engine.cli.outputs import check_output_file
    from engine.cli.progress import ProgressBar
    from engine.explain.sweep import map_nodes, run_map, sweep_options
    from engine.query.run import load_inverter
    from engine.store.export import write_map_csv, write_map_json
    from engine.store.folders import find_model, with_prompts

    for path in (args.csv, args.json, args.notebook):  # fail before minutes of work
        check_output_file(path)
    entry = with_prompts(find_model(args.model, task=args.task), args.prompts)
    inv = load_inverter(entry, device=args.device, decoder_optional=True)
    task = inv.probed.task
    given = {"metric": args.metric} if args.metric else {}
    options = sweep_options(task, candidates=args.candidates, epsilon=args.epsilon, seed=args.seed,
                            same_label=args.same_label, sampler=args.sampler, **given)
    ids = task.parse_query(args.text)
    nodes = map_nodes(inv, ids, list(args.sites) if args.sites else None,
                      list(args.positions) if args.positions else None, sampler=args.sampler)
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
    if args.notebook is not None:
        from engine.notebook import map_notebook, model_ref, write_notebook

        nb = map_notebook(m, model_ref(entry), text=args.text, precision=inv.precision, task=args.task,
                          prompts=args.prompts)
        print(f"wrote {write_notebook(nb, args.notebook)}")
    return 0


def _grid(title: str, grid, digits: int = 2) -> None:
    """A (layers, heads) table, one row per layer."""
    print(title)
    print("      " + "".join(f"{'H' + str(h):>8}" for h in range(grid.shape[1])))
    for layer, row in enumerate(grid):
        print(f"  L{layer:<3}" + "".join(f"{v:>8.{digits}f}" for v in row))


def ioi_circuit_cmd(args) -> int:
    import json

    from engine.circuits.ioi import inversion_readings, study
    from engine.cli.outputs import check_output_file
    from engine.query.run import load_inverter
    from engine.store.export import atomic_write_bytes
    from engine.store.folders import find_model, with_prompts

    check_output_file(args.json)  # before the study's minutes
    entry = with_prompts(find_model(args.model), "ioi")  # the study reads the IOI prompts, whatever the record says
    if args.record:
        from engine.cli.decoder_cmds import refuse_bundled

        refuse_bundled(entry, args.into_bundled, "--record", "leave out --record to only print the figures")
    inv = load_inverter(entry, device=args.device, decoder_optional=True)
    bar = StageProgress()
    c = study(inv.probed, args.count, args.patched, args.seed, on_progress=bar)
    bar.done()
    print(f"IOI circuit of {entry.name} on {c.prompts} held-out prompts: IO-name accuracy at END {c.accuracy:.1%}, "
          f"mean logit difference IO - S {c.logit_diff:.2f}")
    _grid("direct logit attribution at END onto IO - S (final norm frozen), per head:", c.dla)
    _grid("  of which on the IO logit (less the mean over all names):", c.on_io)
    _grid("  and on the S logit (negative: the head suppresses S):", c.on_s)
    for key, pattern in c.attention.items():
        a, b = key.split(">")
        _grid(f"attention from {a} to {b}:", pattern)
    if c.patch_end is not None:
        print(f"activation patching, S2 replaced by the IO name (and the answer by S), {c.patched_prompts} prompts: "
              "share of IO - S carried")
        _grid("  each head at END:", c.patch_end)
        _grid("  each head at S2:", c.patch_s2)
        print("  residual stream at S2: " + "  ".join(f"x{L}.post {v:.2f}" for L, v in enumerate(c.patch_resid_s2)))
    print(f"largest direct effect on IO - S: {', '.join(c.name_movers()) or 'none'}; against it: "
          f"{', '.join(c.negative_heads()[:4]) or 'none'}; attends most from END to IO below the last layer: "
          f"{c.copier()}")
    readings = []
    if not args.no_inversion:
        if not inv.has_decoder:
            print(f"InversionView readings skipped: {entry.name} has no decoder yet (train-decoder --model "
                  f"{entry.name} --prompts ioi)")
        else:
            readings = [r for rule in (False, True) for r in inversion_readings(
                inv, c, args.queries, args.candidates, args.seed, same_label=rule, on_progress=bar)]
            bar.done()
            print(f"InversionView, {args.queries} held-out queries per site, {args.candidates} candidates, "
                  f"{inv.probed.task.query_metric}, epsilon 0.1: share of in-epsilon candidates with the query's ...")
            print(f"  {'site':<8} {'at':<4} {'compared at':<12} {'in ε':>6} {'IO (all)':>14} {'S (all)':>14}  "
                  "top shared feature")
            for r in readings:
                rule = "same label" if r.same_label else "any position"
                tops = ", ".join(f"{k} {v}" for k, v in sorted(r.top.items(), key=lambda kv: -kv[1]))
                print(f"  {r.site:<8} {r.position:<4} {rule:<12} {r.in_epsilon:>6.0%} "
                      f"{r.io_share:>6.0%} ({r.io_base:>4.0%})"
                      f" {r.s_share:>6.0%} ({r.s_base:>4.0%})  {tops}")
    if args.json is not None or args.record:
        from dataclasses import asdict

        data = {"model": entry.name, "prompts": c.prompts, "accuracy": c.accuracy, "logit_diff": c.logit_diff,
                "dla": c.dla.tolist(), "on_io": c.on_io.tolist(), "on_s": c.on_s.tolist(),
                "attention": {k: v.tolist() for k, v in c.attention.items()},
                "patch_end": None if c.patch_end is None else c.patch_end.tolist(),
                "patch_s2": None if c.patch_s2 is None else c.patch_s2.tolist(),
                "patch_resid_s2": c.patch_resid_s2, "patched_prompts": c.patched_prompts,
                "name_movers": c.name_movers(), "copier": c.copier(),
                "inversion": [asdict(r) for r in readings]}
    if args.json is not None:
        atomic_write_bytes(args.json, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
        print(f"wrote {args.json}")
    if args.record:
        from engine.cli.invocation import command_line
        from engine.store.folders import read_config, rewrite_model, write_config

        with rewrite_model(entry) as staging:  # record and card change together
            config = read_config(staging)
            config["circuit"] = {**data, "command": command_line(leave_out=("--record", "--into-bundled"))}
            write_config(staging, config)
        print(f"recorded in {entry.path / 'CARD.md'}")
    return 0


class StageProgress:
    """The study's (stage, done, total) progress on stderr, one bar per stage."""

    def __init__(self):
        import time

        from engine.cli.progress import ProgressBar

        self._bars, self._make, self._t0, self._clock = {}, ProgressBar, time.time(), time.time

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self._bars.get(stage)
        if bar is None:
            bar = self._bars[stage] = self._make(stage, stream=sys.stderr)
        bar.update(done, total, self._clock() - self._t0)

    def done(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
