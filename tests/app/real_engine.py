"""The real engine for app tests: engine.query, on a small randomly initialised model.

A random decoder samples nonsense, but every step a user's query takes is real: loading
safetensors, generating, re-running the probed model, ranking, CSV export. Nothing is trained.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def engine_query_missing() -> str:
    """Why the real-engine tests cannot run, or '' when they can."""
    try:
        if importlib.util.find_spec("engine.query.run") is None:
            return "engine.query is not importable yet (the lead adds it)"
        import engine.query.run  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return f"engine.query is not importable: {type(e).__name__}: {e}"
    return ""


requires_real_engine = pytest.mark.skipif(bool(engine_query_missing()), reason=engine_query_missing() or "ok")


def make_tiny_model(folder: Path, task: str = "counting", name: str | None = None) -> Path:
    """A model folder: random probed model of the paper's shape + a small random decoder."""
    from engine.decoder.files import save_decoder
    from engine.decoder.train import DecoderTrainConfig, new_decoder
    from engine.probed.model import PAPER_CONFIGS, build_probed
    from engine.probed.sites import paper_sites
    from engine.store.folders import save_probed

    probed = build_probed(PAPER_CONFIGS[task], seed=0)
    save_probed(probed, folder, name=name or folder.name)
    sites = paper_sites(probed.config)
    decoder = new_decoder(probed, DecoderTrainConfig(minutes=0, d_model=32, n_layers=1, n_heads=2), sites)
    save_decoder(folder, decoder.eval(), [s.id for s in sites], {"command": "tests (random, untrained)"})
    return folder


def engine_gone(pid: int | None, timeout_s: float = 10.0) -> bool:
    """Has the engine process ended (and been reaped)? Polled: the link kills a process that lingers."""
    import os
    import time

    if pid is None:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
