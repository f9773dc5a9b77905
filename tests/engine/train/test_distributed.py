"""Decoder training on two gloo processes (what torchrun starts) equals one process with the same
global batch, keeps both ranks' weights identical, and resumes with another number of processes."""
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from engine.decoder.train import DecoderTrainConfig, train_decoder
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.store.safefiles import load_tensors, save_tensors

pytestmark = pytest.mark.slow  # make test-fast leaves these out; CI runs them

CFG = dict(minutes=0, batch_size=24, d_model=32, n_layers=1, n_heads=2, lr=3e-3, warmup=2, check_every_steps=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(steps: int, checkpoint: Path, ranks=None, stop_after: int | None = None):
    torch.set_num_threads(1)
    probed = build_probed(PAPER_CONFIGS["counting"], seed=0)
    asked = iter(range(10**6))  # should_stop is asked once before each step
    stop = None if stop_after is None else (lambda: next(asked) >= stop_after)
    return train_decoder(probed, DecoderTrainConfig(steps=steps, **CFG), checkpoint, resume=True, ranks=ranks,
                         should_stop=stop)


def _rank(rank: int, world: int, port: int, folder: str, steps: int, stop_after: int | None) -> None:
    from engine.errors import Cancelled
    from engine.train.distributed import join, leave

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    ranks, _ = join("cpu")
    assert (ranks.rank, ranks.world) == (rank, world)
    try:
        decoder, result = _train(steps, Path(folder) / "run.safetensors", ranks, stop_after)
    except Cancelled:  # stopped part way: the checkpoint keeps the run
        leave(ranks)
        return
    save_tensors(Path(folder) / f"rank{rank}.safetensors", decoder.state_dict(),
                 {"steps": result.steps, "pairs": result.pairs})
    leave(ranks)


def _two_ranks(folder: Path, steps: int, stop_after: int | None = None, timeout_s: float = 240) -> None:
    """Both ranks to the end; a hang fails the test (the processes are ended) instead of the suite."""
    ctx = mp.spawn(_rank, args=(2, _free_port(), str(folder), steps, stop_after), nprocs=2, join=False)
    deadline = time.monotonic() + timeout_s
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for process in ctx.processes:
                process.terminate()
            pytest.fail(f"the two ranks did not finish within {timeout_s:.0f} s")


def _close(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_gloo_ranks_train_what_one_process_trains(tmp_path):
    _two_ranks(tmp_path, steps=4)
    rank0, meta0 = load_tensors(tmp_path / "rank0.safetensors")
    rank1, _ = load_tensors(tmp_path / "rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # DDP keeps the replicas identical
    assert meta0["steps"] == 4 and meta0["pairs"] == 4 * CFG["batch_size"]
    single, _ = _train(4, tmp_path / "single.safetensors")
    single = single.state_dict()
    start = build_probed(PAPER_CONFIGS["counting"], seed=0)
    from engine.decoder.train import new_decoder
    from engine.probed.sites import paper_sites

    fresh = new_decoder(start, DecoderTrainConfig(steps=4, **CFG), paper_sites(start.config)).state_dict()
    assert _close(single, fresh) > 1e-3  # the weights moved, so agreeing below means something
    assert _close(rank0, single) < 1e-5


def test_a_two_rank_run_resumes_on_one_process(tmp_path):
    _two_ranks(tmp_path, steps=5, stop_after=3)  # stopped after 3 of 5 steps
    assert load_tensors(tmp_path / "run.safetensors")[1]["step"] == 3  # rank 0 wrote the checkpoint
    resumed, result = _train(5, tmp_path / "run.safetensors")
    assert result.steps == 5
    straight, _ = _train(5, tmp_path / "straight.safetensors")
    assert _close(resumed.state_dict(), straight.state_dict()) < 1e-5
