"""Nothing is written where it was not asked for, and a model folder changes as one unit."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import torch

from engine.cli.main import main as cli_main
from engine.decoder.files import load_decoder
from engine.decoder.job import finish
from engine.decoder.train import DecoderTrainConfig, DecoderTrainResult, new_decoder
from engine.errors import OutputError
from engine.probed.sites import paper_sites
from engine.store import safefiles, staging
from engine.store.folders import BUNDLED_DIR, list_models, load_probed, open_folder
from engine.store.safefiles import atomic_write_text
from tests.app.real_engine import make_tiny_model


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (hidden ones too) with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bundled_before():
    return tree_digest(BUNDLED_DIR)


@pytest.mark.parametrize("args,says", [
    (["train-decoder", "counting", "--minutes", "1"], "is bundled"),
    (["train-decoder", "counting"], "--into NAME"),
    (["train-decoder", "counting", "--minutes", "-1"], "--minutes: expected minutes above 0"),
    (["train-decoder", "counting", "--minutes", "0"], "--minutes: expected minutes above 0"),
    (["train-decoder", "counting", "--minutes", "nan"], "--minutes: expected minutes above 0"),
    (["train-decoder", "counting", "--steps", "0", "--into", "x"], "--steps: expected a number of steps"),
    (["train-decoder", "counting", "--into", "counting"], "belongs to a bundled model"),
    (["train-decoder", "counting", "--into", "../up"], "is not allowed"),
    (["eval-decoder", "counting", "--record"], "is bundled"),
    (["train-probed", "counting", "--out", str(BUNDLED_DIR / "counting")], "--into-bundled"),
    (["query", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", "²"], "not a position label"),
    (["query", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", "9" * 5000], "out of range"),
    (["query", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", "1", "--seed", str(2 ** 64)], "--seed"),
    (["query", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", "1", "--top", "-3"], "--top"),
    (["query", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", "1", "--device", "foo"], "--device"),
    (["eval-decoder", "counting", "--epsilon", "nan"], "--epsilon"),
    (["eval-decoder", "counting", "--queries", "0"], "--queries"),
    (["eval-probed", "counting", "--limit", "-999999999"], "--limit"),
    (["train-decoder", "counting", "--into", "x", "--threads", "-1"], "--threads"),
])
def test_refused_commands_say_why_in_one_line_and_change_nothing(args, says, capsys, bundled_before):
    user = Path(os.environ["INVERSIONVIEW_DATA_DIR"])
    user_before = tree_digest(user) if user.is_dir() else {}
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert tree_digest(BUNDLED_DIR) == bundled_before
    assert (tree_digest(user) if user.is_dir() else {}) == user_before


def trained_result(entry, seed: int):
    probed = load_probed(entry)
    sites = paper_sites(probed.config)
    cfg = DecoderTrainConfig(minutes=0, d_model=32, n_layers=1, n_heads=2)
    torch.manual_seed(seed)
    decoder = new_decoder(probed, cfg, sites)
    result = DecoderTrainResult(config=cfg, decoder_config=decoder.cfg, sites=[s.id for s in sites], steps=7,
                                pairs=70, seconds=1.0)
    return probed, decoder, result


def decoder_digest(entry) -> str:
    probed = load_probed(entry)
    decoder, _ = load_decoder(entry, probed)
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in decoder.state_dict().values())).hexdigest()


def test_a_finish_cut_at_any_write_or_rename_leaves_the_old_model_or_the_new(tmp_path, monkeypatch):
    folder = make_tiny_model(tmp_path / "m", name="m")
    old = decoder_digest(open_folder(folder))
    probed, decoder, result = trained_result(open_folder(folder), seed=1)
    real_write, real_rename = safefiles.atomic_write_bytes, staging.os.rename
    cuts = 0
    for where in ("write", "rename"):
        for k in range(1, 6):
            calls = {"n": 0}

            def failing(real, *a, _k=k, calls=calls):
                calls["n"] += 1
                if calls["n"] == _k:
                    raise KeyboardInterrupt("killed")  # what a kill would cut short, as a catchable stand-in
                return real(*a)

            if where == "write":
                monkeypatch.setattr(safefiles, "atomic_write_bytes", lambda *a: failing(real_write, *a))
            else:
                monkeypatch.setattr(staging.os, "rename", lambda *a: failing(real_rename, *a))
            try:
                finish(open_folder(folder), decoder, result, result.config, "test", "cpu")
                done = True
            except KeyboardInterrupt:
                done, cuts = False, cuts + 1
            monkeypatch.setattr(safefiles, "atomic_write_bytes", real_write)
            monkeypatch.setattr(staging.os, "rename", real_rename)
            entry = next(e for e in list_models_in(tmp_path) if e.path == folder)
            got = decoder_digest(entry)
            assert got in (old, decoder_digest_of(decoder)), (where, k)
            if not done:
                assert got == old or where == "rename", (where, k)
            old = got  # the next cut is measured against what is there now
            assert [p.name for p in tmp_path.iterdir()] == ["m"], (where, k)  # no staging copy left visible
    assert cuts >= 3  # the writes of the weights, the config and the card, and the swap, were each cut


def decoder_digest_of(decoder) -> str:
    return hashlib.sha256(b"".join(t.numpy().tobytes() for t in decoder.state_dict().values())).hexdigest()


def list_models_in(root: Path):
    """The folders under root as the store would list them (it recovers a cut swap first)."""
    for left in root.glob(".*.previous"):
        staging.recover(root / left.name[1:-len(".previous")])
    return [open_folder(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def test_a_swap_cut_between_its_renames_is_put_back_by_the_listing(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    folder = make_tiny_model(data / "models" / "mine", name="mine")
    before = tree_digest(folder)
    os.rename(folder, staging.previous_path(folder))  # the first rename of a swap, then the kill
    assert not folder.exists()
    assert "mine" in [e.name for e in list_models()]
    assert tree_digest(folder) == before


def test_output_files_replace_only_regular_files_and_keep_their_mode(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.csv"
    atomic_write_text(fresh, "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~safefiles._UMASK
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        atomic_write_text(fifo, "x")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(tmp_path / ("x" * 300), "x")  # a name too long for the file system
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.csv", "out.csv", "pipe"]


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    real_replace = os.replace
    monkeypatch.setattr(safefiles.os, "replace", lambda *a: (_ for _ in ()).throw(SystemExit("killed")))
    monkeypatch.setattr(safefiles.os, "unlink", lambda *a: None)  # killed: its clean-up never runs
    with pytest.raises(SystemExit):
        atomic_write_text(target, "half")
    monkeypatch.undo()
    assert os.replace is real_replace
    [left] = tmp_path.iterdir()  # the killed writer's own temp file
    os.utime(left, (0, 0))  # long ago
    atomic_write_text(target, "{}")
    assert not left.exists() and target.read_text() == "{}"


@pytest.mark.parametrize("name", [".a.json.backup.tmp", ".a.json.abc123.tmp", ".a.json.ivs-notours.tmp",
                                  ".a.json.ivs-0123456789abcdef.tmp.keep", ".a.json.x.ivs-0123456789abcdef.tmp"])
def test_a_users_own_temp_names_are_never_deleted(name, tmp_path):
    """Only the writer's exact temp name (a marker and 16 hex digits) is its own to clear."""
    mine = tmp_path / name
    mine.write_text("the user's")
    os.utime(mine, (0, 0))  # old enough to pass for a killed writer's
    atomic_write_text(tmp_path / "a.json", "{}")
    assert mine.read_text() == "the user's"


def test_an_output_path_that_is_a_symlink_is_replaced_not_followed(tmp_path):
    """A link planted at an output path (a shared /tmp) must not redirect the write onto its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.chmod(victim, 0o600)
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    atomic_write_text(link, "export")
    assert victim.read_text() == "precious" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not link.is_symlink() and link.read_text() == "export"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "not-yet" / "made.json")  # would make a file where the link points
    atomic_write_text(dangling, "{}")
    assert not dangling.is_symlink() and not (tmp_path / "not-yet").exists()


def test_a_nul_in_an_output_path_is_one_line(tmp_path, capsys):
    with pytest.raises(OutputError, match="cannot hold a NUL"):
        atomic_write_text(tmp_path / "a\0b.csv", "x")
    argv = ["query", "--model", "counting", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", ":",
            "--candidates", "8", "--csv", str(tmp_path / "a\0b.csv")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "NUL" in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_symlinked_file_in_a_model_folder_is_never_written_through(tmp_path, monkeypatch):
    """CARD.md linked to another file: the rewrite replaces the link with a regular file of the
    folder's own; the file it named keeps its bytes. A linked weights file is kept, as a copy."""
    data = tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    folder = make_tiny_model(data / "models" / "m", name="m")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "CARD.md").unlink(missing_ok=True)
    (folder / "CARD.md").symlink_to(os.path.relpath(victim, folder))  # relative: resolves from the copy too
    weights = tmp_path / "weights.safetensors"
    os.rename(folder / "probed.safetensors", weights)
    (folder / "probed.safetensors").symlink_to(weights)
    kept = weights.read_bytes()
    probed, decoder, result = trained_result(open_folder(folder), seed=3)
    finish(open_folder(folder), decoder, result, result.config, "test", "cpu")
    assert victim.read_text() == "precious" and weights.read_bytes() == kept
    assert not (folder / "CARD.md").is_symlink() and "Decoder" in (folder / "CARD.md").read_text()
    assert not (folder / "probed.safetensors").is_symlink() and (folder / "probed.safetensors").read_bytes() == kept
    assert sorted(p.name for p in folder.parent.iterdir()) == ["m"]


@pytest.mark.parametrize("odd", ["loop", "device", "fifo"])
def test_a_model_folder_with_an_entry_that_is_not_a_file_is_refused_in_one_line(odd, tmp_path, monkeypatch,
                                                                                  capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    folder = make_tiny_model(data / "models" / "m", name="m")
    if odd == "loop":
        (folder / "loop").symlink_to(".")  # copied link by link, to ELOOP
    elif odd == "device":
        (folder / "zeros").symlink_to("/dev/zero")  # copied without end
    else:
        os.mkfifo(folder / "pipe")  # a copy would wait for a writer
    before = tree_digest(folder)
    assert cli_main(["eval-decoder", "counting", "--model", "m", "--queries", "1", "--record"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a regular file or folder" in err, err
    assert str(folder) in err and tree_digest(folder) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["m"]  # no .m.staging left


def test_ctrl_c_during_training_keeps_a_checkpoint_and_the_model(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    folder = make_tiny_model(data / "models" / "tiny", name="tiny")
    before = tree_digest(folder)
    env = dict(os.environ, INVERSIONVIEW_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, str(root / "main.py"), "train-decoder", "counting", "--model", str(folder),
                             "--steps", "1000000", "--check-every", "0", "--d-model", "32", "--layers", "1",
                             "--heads", "2", "--batch-size", "8", "--threads", "1", "--init-from", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=root)
    runs = data / "runs"
    try:
        deadline = time.monotonic() + 300  # a generous guard against a hang, not a speed goal
        line = ""
        while "step" not in line and time.monotonic() < deadline:
            line = proc.stderr.read1(4096).decode(errors="replace") if proc.poll() is None else "exited"
        assert proc.poll() is None, "training ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode(errors="replace")
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: the checkpoint keeps the progress" in err and "Traceback" not in err
    checkpoints = list(runs.glob("decoder-counting-tiny-*.safetensors"))
    assert len(checkpoints) == 1 and str(checkpoints[0]) in err
    _, meta = safefiles.load_tensors(checkpoints[0])
    assert meta["step"] >= 1
    assert tree_digest(folder) == before  # an interrupted run writes nothing into the model


def test_training_never_quietly_replaces_a_trained_decoder(tmp_path, monkeypatch, capsys):
    """`--steps 1` on a model with a trained decoder and no stopped run would swap it for a
    one-step one: refused in one line, before anything loads; --fresh says a new one is wanted."""
    data = tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    folder = make_tiny_model(data / "models" / "tiny", name="tiny")
    before = tree_digest(folder)
    argv = ["train-decoder", "counting", "--model", str(folder), "--steps", "1", "--check-every", "0",
            "--d-model", "32", "--layers", "1", "--heads", "2", "--batch-size", "8"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "already has a trained decoder" in err and "--fresh" in err and "--init-from" in err
    assert tree_digest(folder) == before and not (data / "runs").exists()
    assert cli_main([*argv, "--fresh"]) == 0
    assert open_folder(folder).decoder["training"]["steps"] == 1
