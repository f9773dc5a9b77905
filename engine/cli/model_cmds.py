"""`models`, `sites`: what the store holds and which activation sites a model has."""
from __future__ import annotations

from engine.cli import values
from engine.cli.printing import printable
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import TASKS


def add_parsers(sub) -> None:
    p = sub.add_parser("models", help="list bundled and user models")
    p.set_defaults(func=models_cmd)

    p = sub.add_parser("sites", help="list a model's activation sites; with --text, read one activation")
    p.add_argument("--model", type=values.model_name, default=DEFAULT_MODEL,
                   help=f"model name or folder (default: {DEFAULT_MODEL})")
    p.add_argument("--task", choices=list(TASKS),
                   help="which task a Hugging Face checkpoint is, when its special ids do not say")
    p.add_argument("--text", help="an input; prints the activation at --site and --position")
    p.add_argument("--site", default="x1.post", help="site short name or hook name (default: x1.post)")
    p.add_argument("--position", default="-1", help="index or label such as ':' or A1 (default: last before EOS)")
    p.set_defaults(func=sites_cmd)


def say(line: str = "") -> None:
    """Print a line made from names on disk (folders, records, configs): escaped, never obeyed."""
    print(printable(line))


def models_cmd(args) -> int:
    from engine.store.folders import list_models, user_models_dir

    problems: list[str] = []
    entries = list_models(problems=problems)
    for entry in entries:
        say(entry.describe())
    if not entries:
        say("no models found")
    for problem in problems:  # a broken folder is named, and hides nothing else
        say(f"does not open: {problem}")
    say(f"(user models go in {user_models_dir()})")
    from engine.store.hub_cache import cached_models, hub_cache_dir

    problems = []
    cached = cached_models(problems=problems)
    say()
    say(f"Hugging Face cache ({hub_cache_dir()}): {len(cached)} causal language model(s)")
    for model in cached:
        say(f"{model.repo_id:<32} {model.model_type:<10} {', '.join(model.architectures):<24} "
            f"{describe_cached(model)}")
    for problem in problems:
        say(f"does not open: {problem}")
    return 0


def describe_cached(model) -> str:
    """Whether the studio opens a cached model today, and as what."""
    from engine.errors import StoreError
    from engine.store.folders import open_folder
    from engine.tasks import TEXT_TASK

    try:
        entry = open_folder(model.path, "hub")
        if entry.task == TEXT_TASK:
            from engine.store.text_models import check_supported

            check_supported(entry.huggingface["architecture"], model.path / "config.json")
    except StoreError as e:
        return f"does not open: {str(e).split(': ', 1)[-1][:100]}"
    if entry.task == TEXT_TASK:
        return f"opens as a text model ({entry.probed.describe()})"
    return f"opens as the {entry.task} task ({entry.probed.describe()})"


def sites_cmd(args) -> int:
    from engine.probed.sites import all_sites, get_site
    from engine.store.folders import find_model
    from engine.tasks import get_task

    entry = find_model(args.model, task=args.task)
    if args.text is None:
        paper = set(get_task(entry.task).paper_sites)
        print(f"{'site':<8} {'hook':<30} {'layer':>5}  kind        decoder-trained")
        for site in all_sites(entry.probed):
            mark = "yes" if site.short in paper else ""
            print(f"{site.short:<8} {site.id:<30} {site.layer:>5}  {site.kind:<11} {mark}")
        return 0

    import numpy as np

    from engine.probed.sites import read_site
    from engine.runtime import torch
    from engine.store.folders import load_probed

    site = get_site(entry.probed, args.site)
    model = load_probed(entry)
    ids = model.task.parse_query(args.text)
    last = len(ids) - 2 if ids[-1] == model.task.eos_id and len(ids) > 1 else len(ids) - 1  # last before EOS
    position = last if args.position == "-1" else model.task.resolve_position(ids, args.position)
    acts = read_site(model.bridge, torch.tensor([ids], device=model.device), site)  # (1, T, d_model)
    vec = acts[0, position].float().cpu().numpy()
    label = model.task.position_labels(ids)[position]
    print(f"{site.short} ({site.id}) at position {position} ({label!r}): d={vec.size}, norm {np.linalg.norm(vec):.4f}")
    print(" ".join(f"{v:+.3f}" for v in vec))
    return 0
