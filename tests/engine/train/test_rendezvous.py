"""RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set by hand with no other process (#31 item 11):
rank 0 waited silently for torch's 30-minute rendezvous timeout. Now it says it is waiting, and
after JOIN_SECONDS gives one line. (The two-rank tests in test_distributed.py join this way.)"""
import socket

import pytest

import engine.train.distributed as distributed
from engine.tasks.base import TaskInputError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_whose_peers_never_come_says_so_in_one_line(monkeypatch, capsys):
    port = _free_port()
    for name, value in dict(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setattr(distributed, "JOIN_SECONDS", 1.0)
    with pytest.raises(TaskInputError) as caught:
        distributed.join("cpu")
    message = str(caught.value)
    assert f"the other processes did not join at 127.0.0.1:{port} within 1 s" in message and "torchrun" in message
    assert "\n" not in message
    assert f"rank 0 of 2: waiting up to 1 s for the other 1 process at 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_port_that_is_no_port_is_one_line(monkeypatch):
    for name, value in dict(WORLD_SIZE="2", RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="99999").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    with pytest.raises(TaskInputError, match="MASTER_PORT '99999' is not a port"):
        distributed.join("cpu")
