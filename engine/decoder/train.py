"""Training a decoder for a probed model within a time budget, with checkpoints and resume.

The learning rate warms up over the first steps, then follows a cosine over the *time* budget
(the number of steps a CPU manages in N minutes is not known in advance).

Quality here follows the number of pairs seen (benchmarks/decoder_training.py; the README has
the measurements), so the recipe is about pairs per second and about seeing progress:
- length buckets: a batch is sorted by length and run as a few slices, each padded only to its
  own longest input (counting inputs average 21 of 33 tokens, so one padded batch wastes a third
  of the arithmetic): 30% more counting pairs per second;
- in-training checks: every few minutes the paper's in-epsilon test runs on a small sample of
  training-split queries; the points make the quality-against-time curve, and a share of the next
  pairs go to the sites where the decoder lands inside epsilon least often (hard-site focus).

A check is sized to the model: it tests at most cfg.check_sites sites, taking the sites in turn
from one check to the next (a GPT-2-small-shaped model has 157; testing all 157 x 48 queries took
6.5 minutes before the first step), and under a time budget it ends after CHECK_SHARE of the time
between checks (never before MIN_CHECK_SITES sites). Its time counts in the budget, and the last
check's time is kept free at the end for the closing check, so `--minutes 4` ends in about 4
minutes. Progress inside a check reaches on_progress (DecoderProgress.check) after every site.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.decoder.config import DecoderTrainConfig
from engine.decoder.evaluate import measure_quality
from engine.decoder.inputs import DecoderInputs, decoder_length, task_inputs
from engine.decoder.loss import sequence_sums
from engine.decoder.model import ConditionalDecoder, DecoderConfig
from engine.decoder.pairs import PairBatch, make_pairs
from engine.decoder.progress import MIN_CHECK_SITES, CheckProgress, DecoderProgress, QualityPoint  # noqa: F401
from engine.errors import Cancelled, StoreError
from engine.probed.model import ProbedModel
from engine.probed.sites import Site, chosen_sites
from engine.runtime import bf16_pays, flush_denormals
from engine.store.safefiles import load_tensors
from engine.train.distributed import Ranks
from engine.train.loop import OptimiserSettings, TrainingLoop, check_record, damaged


def check_seed(seed: int, index: int) -> int:
    """The seed of the index-th in-training check: its own stream, never one a batch uses."""
    return int(np.random.SeedSequence([seed, index, 1]).generate_state(1)[0])


@dataclass
class DecoderTrainResult:
    config: DecoderTrainConfig
    decoder_config: DecoderConfig
    sites: list[str]  # site ids, in the decoder's site-embedding order
    steps: int
    pairs: int
    seconds: float
    history: list = field(default_factory=list)  # (step, seconds, loss)
    quality: list[QualityPoint] = field(default_factory=list)


def new_decoder(probed: ProbedModel, cfg: DecoderTrainConfig, sites: list[Site]) -> ConditionalDecoder:
    """A randomly initialised decoder over the task's decoder vocabulary (a text model's plus
    the decoder's own EOS and PAD), as long as the task's inputs or cfg.length."""
    task = probed.task
    dcfg = DecoderConfig(d_act=probed.config.d_model, n_sites=len(sites), d_vocab=task.decoder_vocab_size,
                         n_ctx=decoder_length(task, cfg.length), d_model=cfg.d_model, n_layers=cfg.n_layers,
                         n_heads=cfg.n_heads)
    torch.manual_seed(cfg.seed)
    return ConditionalDecoder(dcfg).to(probed.device)


AUTOCAST_VOCAB = 4096  # at least this many decoder ids: the products run in bf16 where bf16 pays


class PairLoss(torch.nn.Module):
    """The summed token loss of a batch of pairs as one module call: DistributedDataParallel
    averages the gradients of what runs inside a wrapped module's forward.

    At a text vocabulary the products run under bfloat16 autocast where bf16 pays (the weights,
    the optimiser and the softmax stay fp32): a d_model-128 decoder's step at GPT-2's vocabulary,
    batch 64, took 0.72-0.85 s against 1.36-1.42 s in fp32 on this project's AMX CPU, the same loss
    to 5 digits. The synthetic tasks' 15- and 40-id vocabularies gain nothing from it (README)."""

    def __init__(self, decoder: ConditionalDecoder, pad_id: int, buckets: int):
        super().__init__()
        self.decoder, self.pad_id, self.buckets = decoder, pad_id, buckets
        device = decoder.tok_emb.weight.device
        self.autocast = decoder.cfg.d_vocab >= AUTOCAST_VOCAB and bf16_pays(device)
        self.device_type = device.type

    def forward(self, tokens: torch.Tensor, z: torch.Tensor, site_ids: torch.Tensor) -> torch.Tensor:
        batch = PairBatch(tokens, z, site_ids, positions=None)
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.autocast):
            return sequence_sums(self.decoder, batch, self.pad_id, self.buckets)[0].float()


def site_probabilities(n_sites: int, focus: float, last: QualityPoint | None, site_names: list[str]) -> np.ndarray:
    """(S,) how often each site is drawn: (1 - focus) uniform, focus in proportion to its miss rate.
    A site `last` has no rate for counts as the average of those it has."""
    uniform = np.full(n_sites, 1.0 / n_sites)
    if last is None or focus <= 0 or not last.rates:
        return uniform
    typical = float(np.mean(list(last.rates.values())))
    miss = np.array([1.0 - last.rates.get(name, typical) for name in site_names]) + 0.02  # never exactly 0
    return (1 - focus) * uniform + focus * miss / miss.sum()


def latest_rates(quality: list[QualityPoint]) -> QualityPoint | None:
    """The last check, with each site's rate from the latest check that tested it (a check of a
    large model tests only some of its sites)."""
    if not quality:
        return None
    rates: dict[str, float] = {}
    for q in quality:
        rates.update(q.rates)
    last = quality[-1]
    return QualityPoint(last.step, last.seconds, last.pairs, rates, last.well_formed, last.of_sites, last.took)


CHECK_SHARE = 0.15  # under a time budget, a check ends after this share of the time between checks


def check_order(n_sites: int, quality: list[QualityPoint], most: int) -> list[int]:
    """The sites the next check tests, in order: up to `most`, going on from where the checks so
    far left off (so that a large model's sites all get tested over a few checks; a resumed run
    continues the same turn)."""
    start = sum(len(q.rates) for q in quality) % n_sites
    return [(start + i) % n_sites for i in range(min(n_sites, max(1, most)))]


def check_limit(cfg: DecoderTrainConfig) -> float | None:
    """The seconds after which a check ends early: none under a budget in steps (the same work on
    any machine), else CHECK_SHARE of the time between checks (or of the budget, if shorter)."""
    if cfg.steps is not None or cfg.check_every_s <= 0:
        return None
    return CHECK_SHARE * min(cfg.check_every_s, cfg.minutes * 60.0)


SIZE_FIELDS = (("d_model", "d_model"), ("n_layers", "layers"), ("n_heads", "heads"))


def checkpoint_meta(checkpoint: Path, cfg: DecoderTrainConfig, name: str) -> dict:
    """A resumable checkpoint's record ({} when there is none); StoreError when it holds a decoder
    of another size than cfg asks for (its weights would not fit)."""
    if not Path(checkpoint).is_file():
        return {}
    meta = load_tensors(checkpoint)[1]
    check_record(checkpoint, meta)
    check_size(checkpoint, meta, cfg, name)
    return meta


QUALITY_FIELDS = {f for f in QualityPoint.__dataclass_fields__}
QUALITY_NEEDED = {"step", "seconds", "pairs", "rates", "well_formed"}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_decoder_record(checkpoint: Path, meta: dict) -> None:
    """StoreError unless a decoder checkpoint's own fields (pairs, history, quality, train) are as
    train_decoder writes them: a damaged one is one line before anything is loaded, not a
    traceback at resume or a record CARD.md cannot be made from after the run."""
    pairs = meta.get("pairs", 0)
    if not isinstance(pairs, int) or isinstance(pairs, bool) or not 0 <= pairs <= 10**15:
        raise damaged(checkpoint, f"pairs must be a whole number, got {str(pairs)[:40]!r}")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(
            isinstance(h, list) and len(h) == 3 and _number(h[0]) and _number(h[1]) and (h[2] is None or _number(h[2]))
            for h in history):
        raise damaged(checkpoint, "history must be a list of [step, seconds, loss]")
    quality = meta.get("quality", [])
    if not isinstance(quality, list) or not all(
            isinstance(q, dict) and QUALITY_NEEDED <= set(q) <= QUALITY_FIELDS
            and all(_number(q[k]) for k in set(q) - {"rates"}) and isinstance(q["rates"], dict)
            and all(isinstance(k, str) and _number(v) for k, v in q["rates"].items()) for q in quality):
        raise damaged(checkpoint, "quality must be a list of in-training checks (step, seconds, pairs, rates, "
                                  "well_formed)")
    if not isinstance(meta.get("train", {}), dict):
        raise damaged(checkpoint, "train must be the run's settings, a JSON object")


def check_size(checkpoint: Path, meta: dict, cfg: DecoderTrainConfig, name: str) -> None:
    check_decoder_record(checkpoint, meta)
    trained = meta.get("train") or {}
    for key, what in (("sites", "sites"), ("length", "length")):
        if key in trained and (trained[key] or None) != (list(getattr(cfg, key)) if key == "sites" and cfg.sites
                                                         else getattr(cfg, key)):
            raise StoreError(f"a stopped run of {name!r} was trained with other {what} ({trained[key]}): give the "
                             f"same --{what} to resume it, or start afresh (checkpoint {checkpoint})")
    for key, what in SIZE_FIELDS:
        if key in trained and trained[key] != getattr(cfg, key):
            raise StoreError(f"a stopped run of {name!r} has {what} {trained[key]}, not {getattr(cfg, key)}: "
                             f"choose that size to resume it, or start afresh (checkpoint {checkpoint})")


def train_decoder(
    probed: ProbedModel,
    cfg: DecoderTrainConfig,
    checkpoint: Path,
    resume: bool = True,
    on_progress: Callable[[DecoderProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_every_s: float = 60.0,
    init_state: dict | None = None,
    inputs: DecoderInputs | None = None,
    ranks: Ranks | None = None,
) -> tuple[ConditionalDecoder, DecoderTrainResult]:
    """Train for cfg.minutes, or cfg.steps when set (resuming `checkpoint` when it exists and
    `resume`), on `inputs` (default: the task's generator).

    init_state: decoder weights to start from (same size and sites), e.g. a decoder trained for
    an earlier version of the same probed model; a checkpoint being resumed takes precedence.
    ranks: this process's place under torchrun (engine/train/distributed.py); cfg.batch_size is
    then the global batch, shared among the ranks.
    """
    ranks = ranks or Ranks()
    flush_denormals()
    task = probed.task
    sites = chosen_sites(probed.config, cfg.sites, probed.task)
    inputs = inputs or task_inputs(task)
    names = [s.short for s in sites]
    decoder = new_decoder(probed, cfg, sites)
    if init_state is not None:
        decoder.load_state_dict(init_state)
    pairs, history, quality = 0, [], []
    loop = TrainingLoop(decoder.parameters(), decoder, OptimiserSettings(cfg.lr, cfg.weight_decay), checkpoint,
                        record=lambda: {"pairs": pairs, "history": history, "quality": [asdict(q) for q in quality],
                                        "train": asdict(cfg)},
                        checkpoint_every_s=checkpoint_every_s, ranks=ranks)
    if resume:
        meta = loop.resume(probed.device, check=lambda m: check_size(checkpoint, m, cfg, Path(checkpoint).stem))
        if meta:
            pairs, history = meta["pairs"], meta["history"]
            quality = [QualityPoint(**q) for q in meta.get("quality", [])]
    loss_module = ranks.wrap(PairLoss(decoder, task.decoder_pad_id, cfg.buckets))  # DDP when distributed
    budget = cfg.minutes * 60.0
    train_inputs = inputs.train

    limit = check_limit(cfg)
    per_site: list[float] = []  # seconds per site in the last check (this process's)

    def check() -> QualityPoint | None:
        # Training-split queries, a fresh draw each time; the seconds spent here count in the
        # budget. A stop request ends a check between sites (None: no point), so stopping never
        # waits for a whole check.
        order = check_order(len(sites), quality, cfg.check_sites)
        started, at = time.time(), loop.elapsed()
        loss = shown_loss()

        def tell(done: int) -> None:
            if on_progress:
                where = CheckProgress(done, len(order), len(sites), time.time() - started, limit,
                                      per_site[-1] if per_site else None, cfg.check_queries)
                on_progress(DecoderProgress(loop.step, loop.elapsed(), budget, loss, pairs, check=where))

        def between_sites(done: int, total: int) -> None:
            if should_stop and should_stop():
                raise Cancelled("stopped during a check")
            tell(done)

        def enough(done: int) -> bool:
            return limit is not None and done >= MIN_CHECK_SITES and time.time() - started >= limit

        tell(0)
        try:
            q = measure_quality(probed, decoder, sites, inputs.train, cfg.check_queries,
                                seed=check_seed(cfg.seed, len(quality)), progress=between_sites,
                                tested=order, enough=enough, agreement=False)
        except Cancelled:
            return None
        finally:
            decoder.train()
        took = time.time() - started
        per_site.append(took / max(len(q.sites), 1))
        tested = {s.site: s.in_epsilon for s in q.sites}
        rates = {n: tested[n] for n in names if n in tested}  # in the decoder's site order
        point = QualityPoint(loop.step, at, pairs, rates, q.well_formed, len(sites), took)
        quality.append(point)
        return point

    by_steps = cfg.steps is not None
    checks_on = cfg.check_every_steps > 0 if by_steps else cfg.check_every_s > 0
    last_check = time.time() if quality else 0.0  # a fresh run checks its starting point first

    def shown_loss() -> float:
        return loop.loss_ema if loop.loss_ema is not None else float("nan")

    def tell_point(point: QualityPoint | None) -> None:
        # as soon as the check ends: a step of a large model can take minutes
        if on_progress and point is not None:
            on_progress(DecoderProgress(loop.step, loop.elapsed(), budget, shown_loss(), pairs, point))

    def check_due() -> bool:
        if not checks_on:
            return False
        if by_steps:
            return not quality or loop.step - quality[-1].step >= cfg.check_every_steps
        return time.time() - last_check >= cfg.check_every_s

    def shared_check() -> QualityPoint | None:
        # rank 0 checks; the others get its point, so every rank draws sites the same way
        point = check() if ranks.main else None
        if ranks.active:
            point = ranks.broadcast(point)
            if not ranks.main and point is not None:
                quality.append(point)
        return point

    def before_step() -> None:
        nonlocal last_check
        due = check_due()
        if ranks.active and not by_steps:
            due = ranks.from_main(float(due)) > 0  # rank 0's clock decides
        if due:
            tell_point(shared_check())
            last_check = time.time()

    def loss_of_step(step: int) -> torch.Tensor:
        probs = site_probabilities(len(sites), cfg.focus, latest_rates(quality), names)
        # each step's pairs come from its own stream: a resumed run, on any number of processes,
        # draws exactly the pairs the uninterrupted run would have
        rng = np.random.default_rng([cfg.seed, step])
        idx = rng.integers(0, len(train_inputs), size=cfg.batch_size)
        tokens = train_inputs[idx]  # the global batch; this rank makes and scores its share
        batch = make_pairs(probed, sites, tokens, rng, probs, rows=ranks.share(len(tokens)))
        n_targets = int((tokens[:, 1:] != task.decoder_pad_id).sum())
        return loss_module(batch.tokens, batch.z, batch.site_ids) * (ranks.world / max(n_targets, 1))

    def after_step() -> None:
        nonlocal pairs
        pairs += cfg.batch_size
        if loop.step % 100 == 0:
            history.append((loop.step, loop.elapsed(), loop.loss_ema))
        if on_progress:
            on_progress(DecoderProgress(loop.step, loop.elapsed(), budget, loop.loss_ema, pairs))

    def finished() -> bool:
        if by_steps:
            return loop.step >= cfg.steps
        # the closing check runs after the last step: keep the time the last check took free for it
        closing = quality[-1].took if checks_on and quality and quality[-1].step != loop.step else 0.0
        return loop.elapsed() + closing >= budget

    decoder.train()
    try:
        loop.run(loss_of_step, lambda step: cfg.lr_at(step, cfg.done_frac(step, loop.elapsed())), finished,
                 should_stop=should_stop, stop_message="decoder training stopped; the checkpoint keeps the progress",
                 before_step=before_step, after_step=after_step)
    finally:
        # A DDP wrapper must go while its process group lives: freed later (a stopped run's traceback
        # keeps this frame), its destructor joins gloo's thread while holding the GIL, and hangs.
        loss_module = None  # noqa: F841 (the closure's cell: the wrapper is freed here)
    if checks_on and not (quality and quality[-1].step == loop.step):
        tell_point(shared_check())
    loop.save()
    decoder.eval()
    result = DecoderTrainResult(cfg, decoder.cfg, [s.id for s in sites], loop.step, pairs, loop.elapsed(),
                                history, quality)
    return decoder, result
