"""Training on several processes: `torchrun` and DistributedDataParallel.

`torchrun --nproc_per_node N main.py train-decoder ...` starts N copies of the command; each
finds its rank in the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) and joins the process group: NCCL on CUDA, gloo on the CPU. Without those
variables a run is one process and nothing here does anything.

What every rank does the same way, so that N processes train exactly what one process would
with the same global batch (a test checks it on two gloo processes):
- every rank draws the whole global batch from the same random stream and keeps its own share
  of the rows (`share`), so ranks see different pairs and the stream does not depend on N: a
  run resumed with another number of processes goes on with the same pairs;
- the loss is each rank's sum over its tokens divided by the global token count (known to all,
  from the global batch), times N: DDP's gradient average is then the single-process gradient;
- rank 0 owns the clock, the checks and the files: its elapsed time, stop request and check
  results are shared each step (`from_main`, `any_rank`, `broadcast`), and only it writes
  checkpoints, the decoder and the card.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> slice:
        """This rank's rows of a global batch of n (contiguous, sizes differing by at most one)."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def from_main(self, value: float) -> float:
        """Rank 0's value, on every rank."""
        if not self.active:
            return value
        t = torch.tensor([value if self.main else 0.0], dtype=torch.float64, device=_device())
        torch.distributed.all_reduce(t)
        return float(t[0])

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when any rank says True (a stop request on one stops all)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=_device())
        torch.distributed.all_reduce(t)
        return bool(t[0] > 0)

    def mean(self, value: float) -> float:
        """The mean over ranks of a number (the shown loss)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_device())
        torch.distributed.all_reduce(t)
        return float(t[0]) / self.world

    def broadcast(self, obj):
        """Rank 0's object (any picklable value), on every rank."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module under DistributedDataParallel (its backward averages gradients over ranks)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        cuda = next(module.parameters()).device.type == "cuda"
        return DistributedDataParallel(module, device_ids=[self.local_rank] if cuda else None)


def _device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo takes CPU tensors
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _env_int(name: str, default: str | None = None) -> int | None:
    text = os.environ.get(name, default)
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else -1  # -1: not a count


LAUNCH_VARIABLES = ("RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets beside WORLD_SIZE


def launched_by_torchrun() -> bool:
    """Whether this process is one of several (WORLD_SIZE above 1); the TaskInputError (a one-line
    error on the command line) when the environment says so but cannot be joined: WORLD_SIZE set
    by hand without the rest of torchrun's variables would fail deep inside torch.distributed, or
    wait for the other processes for half an hour."""
    from engine.tasks.base import TaskInputError

    world = _env_int("WORLD_SIZE", "1")
    if world == -1 or world == 0:
        raise TaskInputError(f"WORLD_SIZE={os.environ['WORLD_SIZE'][:20]!r} is not a number of processes: unset it, "
                             "or start several with torchrun --nproc_per_node N main.py ...")
    if world == 1:
        return False
    missing = [name for name in LAUNCH_VARIABLES if not os.environ.get(name, "").strip()]
    rank, local = _env_int("RANK"), _env_int("LOCAL_RANK", "0")
    if missing or rank == -1 or local == -1 or (rank is not None and rank >= world):
        what = f"{', '.join(missing)} not set" if missing else f"RANK {os.environ.get('RANK')!r} of WORLD_SIZE {world}"
        raise TaskInputError(f"WORLD_SIZE is {world} but {what}: start several processes with torchrun "
                             f"--nproc_per_node {world} main.py ... (it sets RANK, LOCAL_RANK, MASTER_ADDR and "
                             "MASTER_PORT), or unset WORLD_SIZE to train in one process")
    return True


def join(device: str | None) -> tuple[Ranks, str | None]:
    """Join torchrun's process group when launched by it; (the ranks, the device this rank uses).

    On CUDA each rank takes the GPU of its local rank and the group speaks NCCL; on the CPU,
    gloo. One process (no torchrun): Ranks() and the device unchanged."""
    if not launched_by_torchrun():
        return Ranks(), device
    local = _env_int("LOCAL_RANK", "0")  # checked by launched_by_torchrun
    cuda = (device or "").startswith("cuda") or (device is None and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not torch.distributed.is_initialized():
        backend = "nccl" if cuda else "gloo"
        if os.environ.get("TORCHELASTIC_RUN_ID"):  # torchrun's agent has started every process: join its store
            torch.distributed.init_process_group(backend)
        else:
            store = _rendezvous(_env_int("RANK"), _env_int("WORLD_SIZE"))
            torch.distributed.init_process_group(backend, store=store, rank=_env_int("RANK"),
                                                 world_size=_env_int("WORLD_SIZE"))
    return Ranks(torch.distributed.get_rank(), torch.distributed.get_world_size(), local), device or "cpu"


JOIN_SECONDS = 120.0  # how long processes started by hand (not by torchrun) wait for each other


def _rendezvous(rank: int, world: int):
    """The processes' meeting point when RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT were set by
    hand: as torch's env:// does it, but waiting JOIN_SECONDS, not half an hour without a word,
    and a one-line error when the others do not come."""
    import sys
    from datetime import timedelta

    from engine.tasks.base import TaskInputError

    host, port = os.environ["MASTER_ADDR"].strip(), _env_int("MASTER_PORT")
    where = f"{host[:60]}:{os.environ['MASTER_PORT'].strip()[:10]}"
    if port is None or not 0 < port < 65536:
        raise TaskInputError(f"MASTER_PORT {os.environ['MASTER_PORT'][:20]!r} is not a port (1-65535)")
    print(f"rank {rank} of {world}: waiting up to {JOIN_SECONDS:.0f} s for the other {world - 1} process"
          f"{'es' * (world > 2)} at {where}", file=sys.stderr, flush=True)
    try:
        store = torch.distributed.TCPStore(host, port, world, is_master=rank == 0,
                                           timeout=timedelta(seconds=JOIN_SECONDS), wait_for_workers=True)
    except (RuntimeError, OSError, ValueError) as e:  # DistStoreError and DistNetworkError are RuntimeErrors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise TaskInputError(f"rank {rank} of WORLD_SIZE {world}: the other processes did not join at {where} "
                             f"within {JOIN_SECONDS:.0f} s ({first}); start them all with torchrun "
                             f"--nproc_per_node {world} main.py ..., or unset WORLD_SIZE to train in one "
                             "process") from None
    store.set_timeout(timedelta(minutes=30))  # torch's default from here on: a long check on rank 0 is waited for
    return store


def leave(ranks: Ranks) -> None:
    """Leave the process group together: a rank that left while another still wrote the
    checkpoint could leave that one waiting at exit."""
    if ranks.active and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
