"""A corpus of damaged model folders, generated here: each gives one line naming the file, exit 2,
and nothing is allocated or written (a record asking for a billion layers is refused up front)."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from engine.cli.main import main as cli_main
from tests.app.real_engine import make_tiny_model

TEXT = "Baiaigiaaggi|g:3"


def probed_case(field, value):
    return lambda record: record["probed"].__setitem__(field, value)


def decoder_case(field, value):
    return lambda record: record["decoder"]["config"].__setitem__(field, value)


CASES = {
    "layers as text": probed_case("n_layers", "2"),
    "layers fractional": probed_case("n_layers", 2.5),
    "no layers": probed_case("n_layers", 0),
    "negative heads": probed_case("n_heads", -1),
    "heads zero": probed_case("n_heads", 0),
    "a billion layers": probed_case("n_layers", 1_000_000_000),
    "width NaN": probed_case("d_model", math.nan),
    "width not divisible": probed_case("n_heads", 3),
    "unknown activation": probed_case("act_fn", "swish"),
    "unknown task": probed_case("task", "chess"),
    "boolean width": probed_case("d_model", True),
    "huge vocabulary": probed_case("d_vocab", 10**12),
    "decoder heads zero": decoder_case("n_heads", 0),
    "decoder billion layers": decoder_case("n_layers", 10**9),
    "decoder width text": decoder_case("d_model", "128"),
    "probed not an object": lambda record: record.__setitem__("probed", [1, 2]),
}


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("src") / "tiny", name="tiny")


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_record_is_one_line_naming_the_file(case, source, tmp_path, capsys):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(source, folder)
    record = json.loads((folder / "inversionview.json").read_text())
    CASES[case](record)
    (folder / "inversionview.json").write_text(json.dumps(record))
    before = digest(folder)
    code = cli_main(["query", "--model", str(folder), "--text", TEXT, "--site", "x1.post", "--position", ":",
                     "--candidates", "16"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "inversionview.json" in err, err
    assert digest(folder) == before


def test_deeply_nested_json_is_one_line(source, tmp_path, capsys):
    import shutil

    folder = tmp_path / "deep"
    shutil.copytree(source, folder)
    (folder / "inversionview.json").write_text("[" * 100_000 + "]" * 100_000)
    assert cli_main(["sites", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "inversionview.json" in err and "Traceback" not in err
    assert cli_main(["models"]) == 0  # one broken folder breaks nothing else


@pytest.mark.parametrize("what", ["nan", "inf", "int64", "bool", "float16"])
def test_weights_are_checked_as_they_load(what, source, tmp_path, capsys):
    import shutil

    import torch

    from engine.store.safefiles import load_tensors, save_tensors

    folder = tmp_path / "w"
    shutil.copytree(source, folder)
    tensors, meta = load_tensors(folder / "probed.safetensors")
    key = "blocks.0.mlp.in.weight"
    if what in ("nan", "inf"):
        tensors[key][0, 0] = float(what)
    elif what == "float16":
        tensors = {k: v.to(torch.float16) for k, v in tensors.items()}
    else:
        tensors[key] = tensors[key].to(getattr(torch, what))
    save_tensors(folder / "probed.safetensors", tensors, meta)
    before = digest(folder)
    code = cli_main(["flow", "--model", str(folder), "--text", TEXT])
    err = capsys.readouterr().err
    if what == "float16":  # converted, and said so
        assert code == 0 and err.count("\n") == 1
        assert err.startswith("warning: ") and "float16 were converted to float32" in err
    else:
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert "probed.safetensors" in err and key in err
        assert ("NaN or infinite" in err) if what in ("nan", "inf") else ("not floating-point" in err)
    assert digest(folder) == before


def test_deeply_nested_safetensors_metadata_is_one_line(source, tmp_path, capsys):
    import shutil

    from engine.store.safefiles import load_tensors

    folder = tmp_path / "meta"
    shutil.copytree(source, folder)
    tensors, _ = load_tensors(folder / "probed.safetensors")
    from safetensors.torch import save_file

    save_file(tensors, str(folder / "probed.safetensors"), metadata={"meta": "[" * 100_000 + "]" * 100_000})
    assert cli_main(["flow", "--model", str(folder), "--text", TEXT]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "probed.safetensors" in err
