"""`train-decoder` and `eval-decoder`: make and score InversionView decoders."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.cli import values
from engine.cli.invocation import command_line
from engine.decoder.config import DecoderTrainConfig
from engine.tasks import PROMPTS, TASKS
from engine.tasks.text import TEXT_TASK

TASK_HELP = "the task (a text model needs only --model)"


def add_parsers(sub) -> None:
    p = sub.add_parser("train-decoder", help="train a decoder for a probed model (time budget, checkpoints, resume)")
    p.add_argument("task", nargs="?", choices=[*TASKS, TEXT_TASK], help=TASK_HELP)
    p.add_argument("--model", type=values.model_name,
                   help="model name, folder or Hugging Face cache id (default: the bundled model of TASK)")
    p.add_argument("--corpus", type=values.path, metavar="FILE",
                   help="text to train on, for a text model: plain text (one text per line) or JSON Lines "
                        "with a \"text\" field")
    p.add_argument("--prompts", choices=PROMPTS,
                   help="a text model's inputs are this prompt distribution (ioi: the IOI prompts), not a corpus")
    p.add_argument("--sites", type=values.site_list, metavar="A,B,...",
                   help="sites to train on (default: the paper's choice for the model)")
    p.add_argument("--length", type=values.decoder_length,
                   help="a text model's decoder length in tokens, BOS and EOS included (default 40)")
    p.add_argument("--into", type=values.model_name, metavar="NAME",
                   help="train into a new user model NAME made from --model's probed weights")
    p.add_argument("--into-bundled", action="store_true",
                   help="allow replacing a bundled model's decoder (in models/); otherwise bundled models are kept")
    p.add_argument("--minutes", type=values.positive_minutes, default=10.0, help="training time budget (default 10)")
    p.add_argument("--steps", type=values.steps, help="a budget in optimizer steps instead of minutes")
    p.add_argument("--batch-size", type=values.batch_size, default=DecoderTrainConfig.batch_size)
    p.add_argument("--lr", type=values.learning_rate, default=DecoderTrainConfig.lr)
    p.add_argument("--warmup", type=values.warmup, default=DecoderTrainConfig.warmup,
                   help=f"steps of learning-rate warm-up (default {DecoderTrainConfig.warmup})")
    p.add_argument("--d-model", type=values.model_width, default=DecoderTrainConfig.d_model)
    p.add_argument("--layers", type=values.layer_count, default=DecoderTrainConfig.n_layers)
    p.add_argument("--heads", type=values.head_count, default=DecoderTrainConfig.n_heads)
    p.add_argument("--buckets", type=values.buckets, default=DecoderTrainConfig.buckets,
                   help="length slices per batch, to compute less padding (1 = none)")
    p.add_argument("--focus", type=values.share, default=DecoderTrainConfig.focus,
                   help="share of pairs drawn toward the sites the last check found weakest (0-1)")
    p.add_argument("--check-every", type=values.minutes_or_zero, default=DecoderTrainConfig.check_every_s / 60,
                   metavar="MINUTES",
                   help="test the decoder every N minutes (0 = never; the checks set the focus)")
    p.add_argument("--init-from", type=values.model_name, metavar="MODEL",
                   help="start from this model's decoder (same size and sites) instead of random weights")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--fresh", action="store_true",
                   help="start from random weights: ignore a stopped run's checkpoint, and replace a trained decoder")
    p.add_argument("--threads", type=values.threads)
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=train_decoder_cmd)

    p = sub.add_parser("eval-decoder", help="per-site in-epsilon rate on held-out queries (the paper's test)")
    p.add_argument("task", nargs="?", choices=[*TASKS, TEXT_TASK], help=TASK_HELP)
    p.add_argument("--model", type=values.model_name,
                   help="model name, folder or Hugging Face cache id (default: the bundled model of TASK)")
    p.add_argument("--corpus", type=values.path, metavar="FILE",
                   help="a text model's held-out texts (default: the held-out part of the corpus it was trained on)")
    p.add_argument("--prompts", choices=PROMPTS, help="test on this prompt distribution's held-out prompts (ioi)")
    p.add_argument("--queries", type=values.queries, default=200)
    p.add_argument("--epsilon", type=values.epsilon, default=0.1)
    p.add_argument("--metric", choices=("euclidean", "cosine"),
                   help="distance (default: the paper's, euclidean for the tasks, cosine for text models)")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--device", type=values.device)
    p.add_argument("--record", action="store_true", help="store the figures in the model's record and CARD.md")
    p.add_argument("--into-bundled", action="store_true", help="allow --record to write into a bundled model")
    p.set_defaults(func=eval_decoder_cmd)


def _entry(args):
    from engine.store.folders import with_prompts

    return with_prompts(_named_entry(args), getattr(args, "prompts", None))


def _named_entry(args):
    from engine.errors import StoreError
    from engine.store.folders import find_model

    if args.task in (None, TEXT_TASK):
        if not args.model:
            raise StoreError(f"name a task ({', '.join(TASKS)}) or give --model (a text model needs only --model)")
        entry = find_model(args.model)
        if args.task == TEXT_TASK and entry.task != TEXT_TASK:
            raise StoreError(f"model {entry.name!r} is a {entry.task} model, not a text model")
        return entry
    return find_model(args.model or args.task, task=args.task)


def describe_point(q) -> str:
    """One line for an in-training check: the average and each site's in-epsilon rate."""
    sites = " ".join(f"{name} {rate:.2f}" for name, rate in q.rates.items())
    some = f" on {len(q.rates)} of {q.of_sites} sites" if q.of_sites and len(q.rates) < q.of_sites else ""
    took = f", took {q.took:.0f} s" if q.took >= 1 else ""
    return f"average in-epsilon {q.average:.2f}{some}, well-formed {q.well_formed:.0%}{took} ({sites})"


def describe_checks(cfg, n_sites: int, every: str) -> str:
    """What the in-training checks will do and cost, said before the first one starts."""
    from engine.decoder.train import MIN_CHECK_SITES, check_limit

    tested = min(cfg.check_sites, n_sites)
    sites = f"{tested} of {n_sites} sites in turn" if tested < n_sites else f"all {n_sites} sites"
    limit = check_limit(cfg)
    most = (f", at most about {limit:.0f} s each (at least {min(MIN_CHECK_SITES, tested)} sites)"
            if limit is not None else "")
    counted = "; their time counts in the budget" if cfg.steps is None else ""
    return (f"quality checks: at the start and {every}, {sites} x {cfg.check_queries} queries{most}{counted}; "
            "progress is shown during each")


def describe_check(step: int, c) -> str:
    """The line a check starts with: what it tests, and how long it will take when known."""
    from engine.decoder.train import MIN_CHECK_SITES

    up_to = "up to " if c.limit is not None and c.planned > MIN_CHECK_SITES else ""
    left = c.left()
    left = f", about {left:.0f} s" if left is not None else ""
    return (f"checking the decoder at step {step:,}: {up_to}{c.planned} of {c.of_sites} sites x {c.queries} "
            f"queries{left}")


def refuse_bundled(entry, allowed: bool, what: str, instead: str) -> None:
    """StoreError when `entry` is a bundled model and the command was not told to write into it."""
    from engine.errors import StoreError
    from engine.store.folders import is_bundled
    from engine.store.hub_cache import in_hub_cache

    if is_bundled(entry.path) and not allowed:
        raise StoreError(f"model {entry.name!r} is bundled ({entry.path}); {what} would change it: "
                         f"{instead}, or add --into-bundled to write into it")
    if in_hub_cache(entry.path):  # the cache is Hugging Face's to prune; nothing of ours goes there
        raise StoreError(f"model {entry.name!r} is in the Hugging Face cache ({entry.path}); {what} would "
                         f"write there: {instead}")


def check_decoder_size(d_model: int, heads: int) -> None:
    """Each head takes d_model / heads dimensions: a width the heads do not divide is refused
    here, in one line, not deep in the decoder's construction after the model has loaded."""
    from engine.tasks.base import TaskInputError

    if d_model % heads:
        fits = [h for h in range(1, min(d_model, 128) + 1) if d_model % h == 0]
        raise TaskInputError(f"--heads {heads} does not divide --d-model {d_model}; with d_model {d_model} "
                             f"use --heads {', '.join(map(str, fits[-6:]))} or another divisor")


def refuse_replacing(entry, checkpoint: Path, init_from) -> None:
    """StoreError when the run would quietly replace a trained decoder: the folder has one, no
    stopped run of it is there to resume, and the command says neither where to start from
    (--init-from) nor that a new decoder is wanted (--fresh). `--steps 1` would otherwise swap a
    decoder trained for hours for a one-step one, and exit 0."""
    from engine.errors import StoreError

    if entry.has_decoder and not checkpoint.is_file() and init_from is None:
        steps = ((entry.decoder or {}).get("training") or {}).get("steps")
        trained = f" ({steps:,} steps)" if isinstance(steps, int) and not isinstance(steps, bool) else ""
        raise StoreError(f"model {entry.name!r} already has a trained decoder{trained}; training would replace "
                         f"it: give --init-from {entry.name} to continue from it, or --fresh to train a new one")


def _check_every_steps(args) -> int:
    """With a budget in steps, the in-training checks come ten times a run (none with --check-every 0)."""
    if args.steps is None or args.check_every == 0:
        return 0
    return max(1, args.steps // 10)


def train_decoder_cmd(args) -> int:
    """One process, or one rank of a torchrun launch (engine/train/distributed.py)."""
    from engine.train.distributed import join, leave

    ranks, device = join(args.device)
    try:
        return _train_decoder(args, ranks, device)
    finally:
        leave(ranks)


def _train_decoder(args, ranks, device) -> int:
    from engine.cli.progress import ProgressBar, format_seconds
    from engine.cli.stopping import StopOnInterrupt
    from engine.decoder.inputs import decoder_length, inputs_for
    from engine.decoder.job import checkpoint_path, finish, new_user_model, starting_state
    from engine.decoder.train import checkpoint_meta, train_decoder
    from engine.errors import Cancelled
    from engine.probed.sites import chosen_sites
    from engine.store.folders import check_new_model_name, find_model, load_probed, open_folder, user_models_dir

    say = print if ranks.main else (lambda *a, **k: None)  # one rank speaks for the run
    check_decoder_size(args.d_model, args.heads)
    if args.into:
        check_new_model_name(args.into)  # before anything is loaded or written
    base = _entry(args)
    if not args.into:
        refuse_bundled(base, args.into_bundled, "training its decoder",
                       f"give --into NAME to train into a new user model made from {base.name!r}")
    init_from = find_model(args.init_from, task=args.task) if args.init_from else None  # unknown: before loading
    if not args.into and not args.fresh:  # (a new user model has no decoder; --into refuses a finished one)
        refuse_replacing(base, checkpoint_path(base), init_from)
    if args.threads:
        from engine.threads import apply_threads

        apply_threads(args.threads)
    probed = load_probed(base, device=device)
    cfg = DecoderTrainConfig(minutes=args.minutes, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                             seed=args.seed,
                             d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                             buckets=max(1, args.buckets), focus=args.focus, check_every_s=60 * args.check_every,
                             steps=args.steps, check_every_steps=_check_every_steps(args), sites=args.sites,
                             length=args.length)
    chosen_sites(probed.config, cfg.sites, probed.task)  # an unknown site name: say so before anything is written
    inputs = inputs_for(probed.task, args.corpus, decoder_length(probed.task, cfg.length), args.seed)
    init_state = None
    if init_from is not None:
        init_state = starting_state(init_from, probed, cfg)
    if args.into:  # rank 0 makes the folder; the others open it once it is there
        entry = new_user_model(base, args.into) if ranks.main else None
        ranks.broadcast(None)
        entry = entry or open_folder(user_models_dir() / args.into, "user")
    else:
        entry = base
    checkpoint = checkpoint_path(entry)
    if not args.fresh:
        checkpoint_meta(checkpoint, cfg, entry.name)  # a stopped run of another size: say so before loading anything
    budget = f"{args.steps:,} steps" if args.steps else f"{args.minutes:g} minutes"
    processes = f" on {ranks.world} processes" if ranks.active else ""
    say(f"training a decoder for {entry.name} ({entry.path}): {budget}{processes}, d_model {cfg.d_model}, "
        f"batch {cfg.batch_size}, lr {cfg.lr}; checkpoint {checkpoint}")
    say(f"inputs: {inputs.describe()}")
    if cfg.check_every_steps if cfg.steps else cfg.check_every_s:
        every = (f"every {cfg.check_every_steps:,} steps" if cfg.steps
                 else f"every {cfg.check_every_s / 60:g} minutes")
        say(describe_checks(cfg, len(chosen_sites(probed.config, cfg.sites, probed.task)), every))
    bar = ProgressBar(f"decoder {entry.task}") if ranks.main else None
    check_bar = ProgressBar("  check") if ranks.main else None

    def show(p) -> None:
        if p.check is not None:
            c = p.check
            if c.done == 0:
                bar.note(describe_check(p.step, c))
            else:
                check_bar.update(c.done, c.expected(), c.seconds,
                                 f"sites of {c.of_sites}, {c.queries} queries each", force=c.done == 1)
            return
        if p.quality is not None:
            bar.note(f"check at {p.quality.seconds / 60:.1f} min: {describe_point(p.quality)}")
        if p.step == 0:  # a check before the first step: no bar yet
            return
        done, total = (p.step, cfg.steps) if cfg.steps else (int(p.seconds), int(p.budget))  # steps or seconds
        bar.update(done, total, p.seconds, f"step {p.step} pairs {p.pairs:,} loss {p.loss:.4f}")

    with StopOnInterrupt() as interrupt:
        try:
            decoder, result = train_decoder(probed, cfg, checkpoint, resume=not args.fresh,
                                            on_progress=show if bar else None, init_state=init_state,
                                            should_stop=interrupt.requested, inputs=inputs, ranks=ranks)
        except Cancelled:
            if bar:
                bar.close()
            say(f"interrupted: the checkpoint keeps the progress ({checkpoint}); run the same command to "
                f"resume; {entry.path} is unchanged", file=sys.stderr)
            return 130
    if not ranks.main:
        return 0
    bar.close()
    print(f"trained {result.steps} steps ({result.pairs:,} pairs) in {format_seconds(result.seconds)}")
    finish(entry, decoder, result, cfg, command_line(), str(probed.device), args.init_from, inputs.source)
    print(f"saved {entry.path / 'decoder.safetensors'}")
    return 0


def eval_decoder_cmd(args) -> int:
    from engine.decoder.evaluate import evaluate_decoder
    from engine.query.run import load_inverter

    entry = _entry(args)
    if args.record:
        refuse_bundled(entry, args.into_bundled, "--record", "leave out --record to only print the figures")
    inv = load_inverter(entry, device=args.device)
    t0 = time.time()
    q = evaluate_decoder(inv, held_out_inputs(inv, args.corpus).test, n_queries=args.queries, epsilon=args.epsilon,
                         seed=args.seed, metric=args.metric)
    metric = "1 - cosine" if (args.metric or inv.probed.task.query_metric) == "cosine" else "normalised Euclidean"
    print(f"model {entry.name}: {q.n_queries} held-out queries per site, one T = 1 sample each, "
          f"in epsilon = D < {q.epsilon:g} ({metric})")
    print(f"{'site':<8} {'in-epsilon':>10} {'well-formed':>12}")
    for s in q.sites:
        print(f"{s.site:<8} {s.in_epsilon:>10.2f} {s.well_formed:>12.2f}")
    probe = inv.probed.task.agreement_probe()
    if probe is not None and q.count_agreement is not None:
        print(f"{probe.where}: {q.count_agreement:.0%} of {q.count_agreement_n} in-epsilon samples "
              f"share {probe.shared}")
    print(f"well-formed samples: {q.well_formed:.0%} ({time.time() - t0:.0f} s)")
    print(f"average in-epsilon rate: {q.average:.2f}")
    if args.record:
        _record_quality(entry, q)
    return 0


def held_out_inputs(inv, corpus: Path | None):
    """The inputs eval-decoder queries: the task's held-out split, or for a text model the
    corpus given, else the held-out windows of the corpus its decoder was trained on."""
    from engine.decoder.inputs import inputs_for
    from engine.errors import StoreError

    task = inv.probed.task
    if corpus is None and not task.has_generator:
        source = (inv.entry.decoder or {}).get("training", {}).get("inputs") or {}
        if source.get("kind") != "corpus":
            raise StoreError(f"model {inv.entry.name!r}: give --corpus FILE, the texts to test its decoder on")
        corpus = Path(source["path"])
        if not corpus.is_file():
            raise StoreError(f"the corpus {inv.entry.name!r}'s decoder was trained on is gone ({corpus}); "
                             "give --corpus FILE")
        return inputs_for(task, corpus, inv.decoder.cfg.n_ctx, int(source.get("seed", 0)))
    return inputs_for(task, corpus, inv.decoder.cfg.n_ctx)


def _record_quality(entry, q) -> None:
    from dataclasses import asdict

    from engine.store.folders import read_config, rewrite_model, write_config

    with rewrite_model(entry) as staging:  # record and card change together
        config = read_config(staging)
        config["decoder"]["quality"] = {**asdict(q), "average": q.average, "well_formed": q.well_formed,
                                        "command": command_line(leave_out=("--record", "--into-bundled"))}
        write_config(staging, config)
    print(f"recorded in {entry.path / 'CARD.md'}")
