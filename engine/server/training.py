"""Decoder training as a request of the engine process: the window's Train dialog starts an engine of
its own for it, so a run of minutes or hours never shares the window's process and closing the
window waits for nothing (the engine saves the checkpoint at its next step, then exits).

params: base (the ModelEntry whose probed weights are copied), name (the new user model), settings
(DecoderTrainConfig fields), init_from_base (start from the base's decoder), command (the
command-line twin recorded in the card). Pieces streamed: {"began": TrainStart}, then
{"progress": DecoderProgress} (at most every PROGRESS_EVERY_S, and every one that ends or reports
a check). The answer: {"entry": ModelEntry, "steps", "pairs", "seconds"}, or {"stopped":
DecoderProgress or None} when a cancel stopped it (its checkpoint saved: the same name resumes).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

PROGRESS_EVERY_S = 0.1


@dataclass
class TrainStart:
    """The job has its model folder and checkpoint; sent before the first step."""
    entry: object  # ModelEntry of the user model being trained
    checkpoint: Path
    resumed_step: int  # 0 for a fresh run
    history: list  # the checkpoint's (step, seconds, loss) points, when resumed
    quality: list  # the checkpoint's quality checks (dicts), when resumed


def run_training(params: dict, report, cancel) -> dict:
    from engine.decoder.job import checkpoint_path, finish, new_user_model, starting_state
    from engine.decoder.train import DecoderTrainConfig, checkpoint_meta, train_decoder
    from engine.errors import Cancelled
    from engine.store.folders import load_probed
    from engine.threads import apply_threads

    apply_threads()
    base, name = params["base"], params["name"]
    cfg = DecoderTrainConfig(**params["settings"])
    entry = new_user_model(base, name)  # StoreError for a bad or clashing name, or a finished model
    checkpoint = checkpoint_path(entry)
    meta = checkpoint_meta(checkpoint, cfg, name)  # StoreError for a stopped run of another size
    probed = load_probed(entry)
    init_state = starting_state(base, probed, cfg) if params.get("init_from_base") and not meta else None
    report({"began": TrainStart(entry, checkpoint, int(meta.get("step", 0)), list(meta.get("history", [])),
                                list(meta.get("quality", [])))}, 0, 0)
    last, sent = [None], [0.0]

    def on_progress(p) -> None:
        last[0] = p
        now = time.monotonic()
        if p.quality is not None or p.check is not None or now - sent[0] >= PROGRESS_EVERY_S:
            sent[0] = now
            report({"progress": p}, p.step, 0)

    try:
        decoder, result = train_decoder(probed, cfg, checkpoint, resume=True, on_progress=on_progress,
                                        should_stop=cancel.is_set, init_state=init_state)
    except Cancelled:
        return {"stopped": last[0]}
    done = finish(entry, decoder, result, cfg, params.get("command", ""), str(probed.device),
                  base.name if init_state is not None else None)
    return {"entry": done, "steps": result.steps, "pairs": result.pairs, "seconds": result.seconds}
