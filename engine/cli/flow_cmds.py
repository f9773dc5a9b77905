"""`flow`: the flow graph of one input (logit lens per node, contributions, the route), as text or JSON."""
from __future__ import annotations

import sys

from engine.cli import values
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import TASKS


def add_parsers(sub) -> None:
    p = sub.add_parser("flow", help="the flow graph of one input: logit lens per node, contributions and the route")
    p.add_argument("--model", type=values.model_name, default=DEFAULT_MODEL,
                   help=f"model name or folder (default: {DEFAULT_MODEL})")
    p.add_argument("--task", choices=list(TASKS),
                   help="which task a Hugging Face checkpoint is, when its special ids do not say")
    p.add_argument("--text", required=True, help="a query input, e.g. Baiaigiaaggi|g:3")
    p.add_argument("--threshold", type=values.share, default=0.04, help="the route keeps edges of at least this weight "
                   "(default 0.04); the JSON keeps the same edges, 0 = every edge")
    p.add_argument("--target", help="target token (its text, or an id) at every position "
                   "(default: the model's own prediction at each position)")
    p.add_argument("--position", help="the route's output position: index or label such as ':' "
                   "(default: the last position the model is trained to predict from)")
    p.add_argument("--top-k", type=values.top_k, default=5, help="tokens per readout (default 5)")
    p.add_argument("--json", type=values.path, metavar="PATH",
                   help="write the graph as JSON (written whole or not at all)")
    p.add_argument("--node-share", type=influence_share, help="prune by influence on the output: keep the "
                   "fewest nodes that hold this share of it (attribution-graph tools use 0.8)")
    p.add_argument("--edge-share", type=influence_share, help="and the edges between them that hold this share "
                   "(default 0.98)")
    p.add_argument("--neuronpedia", type=values.path, metavar="PATH",
                   help="write the graph pruned by influence as graph JSON for attribution-graph viewers "
                        "(Neuronpedia, circuit-tracer)")
    p.add_argument("--notebook", type=values.path, metavar="FILE",
                   help="write a Jupyter notebook that rebuilds this graph through the engine's API, shows the "
                        "route as a table and checks it against this one")
    p.set_defaults(func=flow_cmd)


influence_share = values.in_range(float, 0.01, 1.0, "an influence share")


def flow_cmd(args) -> int:
    from engine.store.folders import find_model, load_probed
    from engine.tasks.base import TaskInputError

    if not 0 <= args.threshold <= 1:
        raise TaskInputError(f"--threshold must be between 0 and 1, not {args.threshold}")
    if args.top_k < 1:
        raise TaskInputError(f"--top-k must be at least 1, not {args.top_k}")
    from engine.cli.outputs import check_output_file

    for path in (args.json, args.neuronpedia):  # before the work: a folder, a device or a file in the way
        check_output_file(path, make_folders=True)  # (atomic_write_text makes the missing folders)
    check_output_file(args.notebook)
    entry = find_model(args.model, task=args.task)
    model = load_probed(entry)

    from engine.flow.build import flow_for_query

    graph = flow_for_query(model, args.text, target=args.target, position=args.position,
                           threshold=args.threshold, top_k=args.top_k)
    from pathlib import Path

    from engine.store.safefiles import atomic_write_text

    pruned = None
    if args.node_share is not None or args.edge_share is not None or args.neuronpedia:
        from engine.flow.prune import DEFAULT_EDGE_SHARE, DEFAULT_NODE_SHARE, prune_by_influence

        pruned = prune_by_influence(graph, node_share=args.node_share or DEFAULT_NODE_SHARE,
                                    edge_share=args.edge_share or DEFAULT_EDGE_SHARE)
    pruned_asked = args.node_share is not None or args.edge_share is not None
    if args.json:
        text = graph.to_json()
        if pruned_asked:  # the file holds what was asked for: the pruned graph's edges
            import json

            from engine.flow.prune import pruned_json

            text = json.dumps(pruned_json(json.loads(text), pruned), ensure_ascii=False, separators=(",", ":"))
        atomic_write_text(Path(args.json), text)  # OutputError, one line, when it cannot be written
    if args.neuronpedia:
        import json

        from engine.flow.neuronpedia import neuronpedia_graph, slug_for

        path = Path(args.neuronpedia)
        doc = neuronpedia_graph(graph, pruned, slug=slug_for(path.stem), scan=entry.name, prompt=args.text)
        atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=1))
    print_summary(graph, entry.name, model.config.describe(), sys.stdout)
    if pruned is not None:
        print_pruned(graph, pruned, sys.stdout)
    if args.json and pruned_asked:
        print(f"wrote {args.json}: {len(graph.nodes)} nodes, the {len(pruned.edges)} edges kept by influence pruning")
    elif args.json:
        print(f"wrote {args.json}: {len(graph.nodes)} nodes, "
              f"{sum(weight >= graph.threshold for _, _, weight in graph.edges)} edges of weight >= {graph.threshold}")
    if args.neuronpedia:
        print(f"wrote {args.neuronpedia}: graph JSON for attribution-graph viewers, {len(doc['nodes'])} nodes "
              f"(with {len(doc['nodes']) - len(pruned.nodes)} output tokens), {len(doc['links'])} links")
    if args.notebook:
        from engine.notebook import flow_notebook, model_ref, write_notebook

        nb = flow_notebook(graph, model_ref(entry), args.text, target=args.target, task=args.task)
        print(f"wrote {write_notebook(nb, args.notebook)}")
    return 0


def print_pruned(graph, pruned, out) -> None:
    """The influence pruning in one line, then its most influential nodes."""
    print(f"\npruned by influence: {pruned.summary()}", file=out)
    ranked = sorted(pruned.nodes, key=lambda k: -pruned.influence[k])
    for key in ranked[:12]:
        print(f"  {key[0]:<9} @ {key[1]:<3} {graph.token_labels[key[1]]!r:<12} influence {pruned.influence[key]:.3f}",
              file=out)
    if len(ranked) > 12:
        print(f"  ... {len(ranked) - 12} more nodes", file=out)


def print_summary(graph, name: str, described: str, out) -> None:
    """Per layer and position the logit lens's top-1 token, the output position in detail, the route."""
    label = graph.label
    t = len(graph.tokens)
    out_site, out_pos = graph.output
    w = max(3, max(len(s) for s in (*graph.token_labels, *graph.position_labels)) + 1)
    print(f"model {name} ({described}); input {''.join(graph.token_labels)} ({t} tokens)", file=out)
    node = graph.node(out_site, out_pos)
    print(f"output node {out_site} @ {out_pos} {graph.position_labels[out_pos]!r}: predicts "
          f"{label(node.top[0][0])!r} (p {node.top[0][1]:.3f}); target {label(node.target)!r} "
          f"(rank {node.target_rank}, p {node.target_prob:.3f})", file=out)

    print("\nlogit lens, top-1 token of every node (layers up, positions across):", file=out)
    rows = [("position", [str(i) for i in range(t)]), ("label", graph.position_labels), ("token", graph.token_labels)]
    by_site: dict = {}
    for n in graph.nodes:
        by_site.setdefault(n.site.short, []).append(label(n.top[0][0]))
    sites = list(by_site)
    lines = [(s, by_site[s]) for s in reversed(sites)] + [("", ["-" * (w - 1)] * t)] + rows[::-1]
    for head, cells in lines:
        print(f"  {head:<9}" + "".join(f"{c:>{w}}" for c in cells), file=out)

    print(f"\nat the output position {out_pos} {graph.position_labels[out_pos]!r}:", file=out)
    for s in sites:
        n = graph.node(s, out_pos)
        top = "  ".join(f"{label(i)!r} {p:.2f}" for i, p in n.top[:3])
        line = f"  {s:<9} |x| {n.norm:7.2f}  top {top}"
        if n.target_rank is not None:
            line += f"  | target {label(n.target)!r} rank {n.target_rank} p {n.target_prob:.3f}"
        else:
            line += "  | promotes " + " ".join(repr(label(i)) for i, _ in n.promoted[:3])
            line += " suppresses " + " ".join(repr(label(i)) for i, _ in n.suppressed[:3])
        print(line, file=out)

    print(f"\nroute to {out_site} @ {out_pos} (edges of weight >= {graph.threshold}): {len(graph.route)} edges",
          file=out)
    for (src_site, src_pos), (dst_site, dst_pos), weight in graph.route:
        src = f"{src_site}[{src_pos} {graph.token_labels[src_pos]!r}]"
        dst = f"{dst_site}[{dst_pos} {graph.token_labels[dst_pos]!r}]"
        print(f"  {src:<22} -> {dst:<22} {weight:.3f}", file=out)
