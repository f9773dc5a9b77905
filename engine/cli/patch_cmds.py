"""`patch`: activation patching from the command line, the causal check of a reading.

The corrupted run's activation of each node is written into the clean run; the table ranks the
nodes by the share of the effect each carries alone (1: all of it). With --cumulative the given
nodes are patched one on top of the other, as the paper reports a route.
"""
from __future__ import annotations

from engine.cli import values
from engine.cli.model_flags import add_model_flags

BAR = 20


def add_parsers(sub) -> None:
    from engine.patching.setup import METRICS

    p = sub.add_parser("patch", help="activation patching: which nodes carry the difference between a clean and a "
                                     "corrupted input to the answer")
    add_model_flags(p)
    p.add_argument("--text", required=True, help='the clean input, e.g. "Baiaigiaaggi|g:3"')
    corrupt = p.add_mutually_exclusive_group(required=True)
    corrupt.add_argument("--corrupt", metavar="TEXT", help="the corrupted input, as many tokens as the clean one")
    corrupt.add_argument("--flip", metavar="POSITION=TOKEN", action="append",
                         help="the corrupted input is the clean one with this token replaced (position: index or "
                              "label; token: its text), e.g. --flip 5=a --flip N=2; may repeat")
    p.add_argument("--position", help="the answer position, whose logits are read: index or label "
                                      "(default: the task's, counting ':', addition '=', ioi END)")
    p.add_argument("--metric", choices=METRICS, default="logit_diff",
                   help="logit_diff: logit[clean answer] - logit[corrupt answer] (default); "
                        "prob: the probability of the clean answer")
    p.add_argument("--answer", metavar="TOKEN", help="the clean answer token (default: the clean input's token "
                                                     "after the answer position)")
    p.add_argument("--corrupt-answer", metavar="TOKEN", help="the corrupted answer token (default: the corrupted "
                                                             "input's token after the answer position)")
    p.add_argument("--nodes", type=values.node_list, metavar="SITE@POS,...",
                   help="the nodes to patch, e.g. a0.0@13,a1.0@: (default: every node of the flow graph up to "
                        "the answer position)")
    p.add_argument("--cumulative", action="store_true",
                   help="patch the --nodes one on top of the other, in order, and print the running values")
    p.add_argument("--reverse", action="store_true", help="with --cumulative: the nodes in reverse order")
    p.add_argument("--top", type=values.rows, default=20, help="table rows to print (default 20)")
    p.add_argument("--json", type=values.path, metavar="PATH",
                   help="write the report as JSON (written whole or not at all)")
    p.add_argument("--notebook", type=values.path, metavar="FILE",
                   help="write a Jupyter notebook that re-runs this patching through the engine's API and checks "
                        "it gets the same figures (written whole or not at all)")
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=patch_cmd)


def patch_cmd(args) -> int:
    from engine.cli.outputs import check_output_file
    from engine.tasks.base import TaskInputError

    if args.cumulative and not args.nodes:
        raise TaskInputError("--cumulative patches the --nodes you give, in order; add --nodes, e.g. "
                             "--nodes a0.0@13,a1.0@:")
    if args.reverse and not args.cumulative:
        raise TaskInputError("--reverse is for --cumulative (the order the nodes are added in)")
    for path in (args.json, args.notebook):  # a missing folder, a folder or device there: before any work
        check_output_file(path)

    from engine.patching.nodes import parse_nodes
    from engine.patching.run import patch_cumulative, patch_nodes
    from engine.patching.setup import flip_one, make_setup, parse_flip
    from engine.store.folders import find_model, load_probed, with_prompts

    flips = [parse_flip(f) for f in args.flip or []]  # a malformed flip: before loading
    entry = with_prompts(find_model(args.model, task=args.task), args.prompts)
    probed = load_probed(entry, device=args.device)
    task = probed.task
    clean = task.parse_query(args.text)
    if args.corrupt is not None:
        corrupt = task.tokenize(args.corrupt)  # any input the model reads: a corruption need not be well formed
    else:
        corrupt = clean
        for position, token in flips:
            corrupt = flip_one(task, corrupt, position, token)
    setup = make_setup(task, clean, corrupt, position=args.position, metric=args.metric, answer=args.answer,
                       corrupt_answer=args.corrupt_answer)
    nodes = parse_nodes(probed.config, task, clean, args.nodes) if args.nodes else None

    if args.cumulative:
        report = patch_cumulative(probed, setup, nodes, reverse=args.reverse)
        print_header(report, entry.name)
        print_cumulative(report)
    else:
        report = patch_nodes(probed, setup, nodes)
        print_header(report, entry.name)
        print_table(report, args.top)
    if args.json is not None:
        import json

        from engine.store.safefiles import atomic_write_text

        doc = {"model": entry.name, **report.to_dict()}
        atomic_write_text(args.json, json.dumps(doc, ensure_ascii=False, indent=1))  # OutputError: one line
        print(f"wrote {args.json}")
    if args.notebook is not None:
        from engine.notebook import model_ref, patch_notebook, write_notebook

        nb = patch_notebook(report, model_ref(entry), setup, text=args.text, corrupt=args.corrupt, flips=flips,
                            nodes=args.nodes, task=args.task, prompts=args.prompts)
        print(f"wrote {write_notebook(nb, args.notebook)}")
    return 0


def print_header(report, model: str) -> None:
    i = report.inputs
    print(f"patch {model}: clean {''.join(i.clean_tokens)!r}, corrupted at {i.changes()}")
    print(f"answer at {i.answer_position} {i.answer_label!r}: {i.metric} = {i.metric_words()}; "
          f"clean {report.clean:.4f}, corrupt {report.corrupt:.4f}")


def share_bar(share: float | None, width: int = BAR) -> str:
    """'#' for a share toward the corrupted value, '-' for one away from it; 1 fills the bar."""
    if share is None:
        return " " * width
    n = round(min(abs(share), 1.0) * width)
    return ("#" if share >= 0 else "-") * n + "." * (width - n)


def _share(share: float | None) -> str:
    return "-" if share is None else f"{share:.4f}".replace("-0.0000", "0.0000")


def print_table(report, top: int) -> None:
    ranked = report.ranked()
    print(f"{'node':<14} {'label':<10} {'patched':>10} {'share':>8}  bar")
    for e in ranked[:top]:
        print(f"{e.node:<14} {e.position_label!r:<10} {e.metric:>10.4f} {_share(e.share):>8}  {share_bar(e.share)}")
    if len(ranked) > top:
        print(f"... {len(ranked) - top} more nodes")
    print(f"{len(ranked)} nodes patched one at a time, {report.passes} forward passes, {report.seconds:.2f} s")


def print_cumulative(report) -> None:
    print(f"{'+ node':<14} {'label':<10} {'patched':>10} {'moved':>10} {'share':>8}  bar")
    for s in report.steps:
        print(f"{s.node:<14} {s.position_label!r:<10} {s.metric:>10.4f} {s.moved:>10.4f} {_share(s.share):>8}  "
              f"{share_bar(s.share)}")
    print(report.line())
    print(f"{len(report.steps)} nodes patched cumulatively, {report.passes} forward passes, {report.seconds:.2f} s")
