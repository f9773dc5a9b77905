"""`train-probed` and `eval-probed`: make and score the probed models."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.cli import values
from engine.cli.invocation import command_line
from engine.cli.progress import ProgressBar, format_seconds
from engine.tasks import TASKS


def add_parsers(sub) -> None:
    p = sub.add_parser("train-probed", help="train a probed model on its task (checkpoints, resume)")
    p.add_argument("task", choices=[*TASKS, IOI], help="a synthetic task, or ioi: a GPT-2-architecture language "
                                                      "model trained on the IOI prompts")
    p.add_argument("--steps", type=values.steps, help="optimizer steps (default: the bundled model's schedule)")
    p.add_argument("--batch-size", type=values.batch_size)
    p.add_argument("--lr", type=values.learning_rate)
    p.add_argument("--warmup", type=values.warmup, help="warm-up steps")
    p.add_argument("--balance-lengths", type=values.share, metavar="SHARE",
                   help="share of each batch drawn with every input length equally likely (0-1)")
    p.add_argument("--error-focus", type=values.share, metavar="SHARE",
                   help="share of each batch drawn toward the input lengths the starting weights get wrong "
                        "(in proportion to their error rate; for fine-tuning with --init-from)")
    p.add_argument("--attention-temperature", type=values.temperature, metavar="T",
                   help="divide attention scores by T at the start, easing to 1 over the first 70%% of steps; "
                        "lets fine-tuning move attention that has saturated on the wrong token")
    p.add_argument("--soften-layers", type=values.layer_index, nargs="+", metavar="LAYER",
                   help="the layers --attention-temperature applies to (default: all)")
    p.add_argument("--init-from", type=values.model_name, metavar="MODEL",
                   help="start from this model's weights (fine-tune with the given schedule)")
    p.add_argument("--seed", type=values.seed, default=0)
    p.add_argument("--out", type=values.path, help="model folder to write (default: user models dir / TASK)")
    p.add_argument("--into-bundled", action="store_true", help="allow --out to be a bundled model's folder")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    p.add_argument("--threads", type=values.threads, help="torch CPU threads")
    p.add_argument("--device", type=values.device, help="cpu or cuda (default: cuda when present)")
    p.set_defaults(func=train_probed_cmd)

    p = sub.add_parser("eval-probed", help="score a probed model on the held-out 25%% split")
    p.add_argument("task", choices=[*TASKS, IOI])
    p.add_argument("--model", type=values.model_name, help="model name or folder (default: the bundled model of TASK)")
    p.add_argument("--limit", type=values.limit, help="score only the first N held-out inputs")
    p.add_argument("--device", type=values.device)
    p.set_defaults(func=eval_probed_cmd)


IOI = "ioi"


def _output_folder(args) -> Path | None:
    """Where train-probed writes (--out, else the user models folder / TASK); None, with the
    error said, for a bundled model's folder without --into-bundled."""
    from engine.cli.outputs import check_output_folder
    from engine.store.folders import is_bundled, user_models_dir

    out = Path(args.out or user_models_dir() / args.task)
    check_output_folder(args.out)  # before any training: a file there, or a missing folder
    if is_bundled(out) and not args.into_bundled:
        print(f"error: --out {out} is inside the bundled models/; add --into-bundled to replace a bundled model, "
              "or write elsewhere", file=sys.stderr)
        return None
    return out


def _interrupted(bar, checkpoint: Path, out: Path) -> int:
    bar.close()
    print(f"interrupted: the checkpoint keeps the progress ({checkpoint}); run the same command to resume; "
          f"{out} is unchanged", file=sys.stderr)
    return 130


def train_probed_cmd(args) -> int:
    if args.task == IOI:
        return train_ioi_cmd(args)
    from dataclasses import replace

    from engine.cli.stopping import StopOnInterrupt
    from engine.errors import Cancelled
    from engine.probed.evaluate import score_probed
    from engine.probed.model import PAPER_CONFIGS
    from engine.probed.train import DEFAULT_SCHEDULES, train_probed
    from engine.store.cards import hardware_summary, probed_card
    from engine.store.folders import run_path, save_probed

    if args.threads:
        from engine.threads import apply_threads

        apply_threads(args.threads)
    from engine.store.folders import find_model, load_probed

    cfg = DEFAULT_SCHEDULES[args.task]
    overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("warmup", args.warmup), ("balance_lengths", args.balance_lengths),
                                   ("error_focus", args.error_focus),
                                   ("attention_temperature", args.attention_temperature),
                                   ("soften_layers", tuple(args.soften_layers) if args.soften_layers else None))
                 if v is not None}
    cfg = replace(cfg, seed=args.seed, **overrides)
    n_layers = PAPER_CONFIGS[args.task].n_layers
    if args.soften_layers and not all(0 <= layer < n_layers for layer in args.soften_layers):
        print(f"error: --soften-layers: the {args.task} model has layers 0-{n_layers - 1}, "
              f"got {' '.join(map(str, args.soften_layers))}", file=sys.stderr)
        return 2
    init_state = None
    if args.init_from:
        init_state = load_probed(find_model(args.init_from, task=args.task)).bridge.state_dict()
    out = _output_folder(args)
    if out is None:
        return 2
    checkpoint = run_path("probed", args.task, Path(out))
    print(f"training {args.task}: {cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr}; checkpoint {checkpoint}")
    bar = ProgressBar(f"train {args.task}")

    def show(p):
        acc = f"monitor acc {p.monitor_accuracy:.2%}" if p.monitor_accuracy is not None else ""
        bar.update(p.step, p.total, p.elapsed, f"loss {p.loss:.4f} {acc}")

    with StopOnInterrupt() as interrupt:
        try:
            model, result = train_probed(cfg, checkpoint, resume=not args.fresh, device=args.device,
                                         init_state=init_state, on_progress=show, should_stop=interrupt.requested)
        except Cancelled:
            return _interrupted(bar, checkpoint, out)
    bar.close()
    print(f"trained {result.steps_done} steps in {format_seconds(result.seconds)}; scoring the held-out split...")
    t0 = time.time()
    score = score_probed(model.module, model.task, model.task.split(0).test)
    print(f"accuracy: {score.accuracy:.2%} ({score.correct}/{score.n}, {time.time() - t0:.0f} s)")
    extra = {"probed_training": {"command": command_line(), "schedule": cfg.__dict__, "seconds": result.seconds,
                                 "hardware": hardware_summary(str(model.device)),
                                 "test_accuracy": score.accuracy, "history": result.history}}
    if args.init_from:
        extra["probed_training"]["init_from"] = args.init_from
    entry = save_probed(model, out, extra=extra)
    probed_card(entry)
    print(f"saved {entry.path}")
    return 0


def train_ioi_cmd(args) -> int:
    """train-probed ioi: the tokenizer and the GPT-2-architecture model, saved as a Hugging Face folder."""
    from dataclasses import asdict, replace

    from engine.cli.stopping import StopOnInterrupt
    from engine.errors import Cancelled
    from engine.probed.ioi_train import IOITrainConfig, io_scores, save_ioi_folder, train_ioi
    from engine.store.cards import hardware_summary, ioi_card
    from engine.store.folders import run_path
    from engine.tasks.ioi_prompts import held_out_prompts, ioi_split, load_ioi

    unused = [f"--{name.replace('_', '-')}" for name in ("balance_lengths", "error_focus", "attention_temperature",
                                                          "soften_layers", "init_from") if getattr(args, name)]
    if unused or args.device not in (None, "cpu"):
        print(f"error: {' '.join(unused) or '--device'} is not used by train-probed ioi (it trains on the CPU)",
              file=sys.stderr)
        return 2
    if args.threads:
        from engine.threads import apply_threads

        apply_threads(args.threads)
    overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("warmup", args.warmup)) if v is not None}
    cfg = replace(IOITrainConfig(), seed=args.seed, **overrides)
    out = _output_folder(args)
    if out is None:
        return 2
    checkpoint = run_path("probed", IOI, Path(out))
    print(f"training ioi: GPT-2 {cfg.n_layers} layers x {cfg.n_heads} heads, d_model {cfg.d_model}; {cfg.steps} "
          f"steps, batch {cfg.batch_size}, lr {cfg.lr}; checkpoint {checkpoint}")
    bar = ProgressBar("train ioi")

    def show(p):
        acc = f"monitor IO acc {p.monitor_accuracy:.2%}" if p.monitor_accuracy is not None else ""
        bar.update(p.step, p.total, p.seconds, f"loss {p.loss:.4f} {acc}")

    with StopOnInterrupt() as interrupt:
        try:
            model, tok, result = train_ioi(cfg, checkpoint, resume=not args.fresh, on_progress=show,
                                           should_stop=interrupt.requested)
        except Cancelled:
            return _interrupted(bar, checkpoint, out)
    bar.close()
    data = load_ioi()
    held = held_out_prompts(data, ioi_split(data))
    accuracy, logit_diff = io_scores(model, tok, held)
    print(f"trained {result.steps} steps in {format_seconds(result.seconds)}; held-out IO accuracy at END "
          f"{accuracy:.2%}, logit difference IO - S {logit_diff:.2f}")
    save_ioi_folder(out, model, tok, {"probed_training": {
        "command": command_line(), "schedule": asdict(cfg), "seconds": result.seconds,
        "hardware": hardware_summary("cpu"), "held_out": {"prompts": len(held), "io_accuracy": accuracy,
                                                          "logit_diff": logit_diff},
        "history": result.history}})
    ioi_card(Path(out))
    print(f"saved {out}")
    return 0


def eval_ioi_cmd(args) -> int:
    from engine.probed.ioi_eval import evaluate_ioi
    from engine.store.folders import find_model, load_probed, with_prompts

    entry = with_prompts(find_model(args.model or IOI), IOI)
    model = load_probed(entry, device=args.device)
    score = evaluate_ioi(model, limit=args.limit)
    print(f"model {entry.name} ({entry.path}), held-out IOI prompts: {score.n}")
    print(f"IO-name accuracy at END: {score.accuracy:.2%}; mean logit difference IO - S: {score.logit_diff:.2f}")
    return 0


def eval_probed_cmd(args) -> int:
    if args.task == IOI:
        return eval_ioi_cmd(args)
    from engine.probed.evaluate import score_probed
    from engine.store.folders import find_model, load_probed

    entry = find_model(args.model or args.task, task=args.task)
    model = load_probed(entry, device=args.device)
    test = model.task.split(0).test
    if args.limit:
        test = test[: args.limit]
    bar = ProgressBar(f"eval {entry.name}")
    t0 = time.time()
    score = score_probed(model.module, model.task, test, progress=lambda d, n: bar.update(d, n, time.time() - t0))
    bar.close()
    print(f"model {entry.name} ({entry.path}), held-out {args.task} inputs: {score.n}")
    print(f"{model.task.score_name.split(' (')[0]}: {score.accuracy * 100:.2f}%")
    return 0
