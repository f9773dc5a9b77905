"""Shared test helpers: small probed models and decoders built in seconds, and the CLI runner."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python main.py ARGS` in a fresh process, as a user would."""
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def make_model_folder(folder: Path, task: str, decoder_steps: int | None = None, seed: int = 0) -> Path:
    """A model folder with a randomly initialised probed model and, optionally, a briefly trained decoder."""
    import numpy as np
    import torch

    from engine.decoder.files import save_decoder
    from engine.decoder.pairs import make_pairs
    from engine.decoder.train import DecoderTrainConfig, new_decoder, sequence_loss
    from engine.probed.model import PAPER_CONFIGS, build_probed
    from engine.probed.sites import paper_sites
    from engine.store.folders import save_probed

    probed = build_probed(PAPER_CONFIGS[task], seed=seed)
    save_probed(probed, folder, name=folder.name)
    if decoder_steps is not None:
        sites = paper_sites(probed.config)
        cfg = DecoderTrainConfig(minutes=1, d_model=32, n_layers=1, n_heads=2)
        decoder = new_decoder(probed, cfg, sites)
        opt = torch.optim.AdamW(decoder.parameters(), lr=3e-3)
        rng = np.random.default_rng(seed)
        train = probed.task.split(0).train
        for _ in range(decoder_steps):
            batch = make_pairs(probed, sites, train[rng.integers(0, len(train), 64)], rng)
            loss = sequence_loss(decoder, batch, probed.task.pad_id)
            opt.zero_grad()
            loss.backward()
            opt.step()
        decoder.eval()
        save_decoder(folder, decoder, [s.id for s in sites], {"command": "tests"})
    return folder
