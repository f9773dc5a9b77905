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


# ---- hostile JSON in every file the store reads ---------------------------------------------------
# Each reader (the model record, a Hugging Face config, a safetensors index, a hub-cache entry) is
# fed what json.loads refuses beyond JSONDecodeError (an integer of 5,000 digits: ValueError; deep
# nesting: RecursionError), what it takes but no later reader can use (a lone surrogate: printing
# or writing it fails), and values of the wrong type. One bad file breaks only itself: one line
# naming it, and every other model still lists and opens.
HUGE = "9" * 5000


def hostile_records(good: str) -> dict[str, str]:
    """Record texts made from a good inversionview.json's text."""
    record = json.loads(good)

    def changed(**fields) -> str:
        return json.dumps({**record, **fields})

    return {
        "5000-digit number": good.replace('"format": 1', f'"format": {HUGE}', 1),
        "deep nesting": good.rstrip()[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "lone surrogate": changed(name="a\udc80b"),
        "name a number": changed(name=5),
        "name with a terminal escape": changed(name="\x1b[2J"),
        "decoder a number": changed(decoder=5),
        "decoder training a list": changed(decoder={**record["decoder"], "training": [1]}),
        "huggingface a number": changed(huggingface=5),
        "huggingface architecture a number": changed(huggingface={"architecture": 5}),
        "unknown prompts": changed(prompts="chess"),
    }


HOSTILE_CASES = list(hostile_records(json.dumps({"format": 1, "decoder": {}})))


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_a_hostile_record_breaks_only_its_own_model(case, source, tmp_path, monkeypatch, capsys):
    import shutil

    data = tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    folder = data / "models" / "hostile"
    shutil.copytree(source, folder)
    good = (folder / "inversionview.json").read_text()
    (folder / "inversionview.json").write_text(hostile_records(good)[case], encoding="utf-8", errors="surrogatepass")
    before = digest(folder)

    assert cli_main(["models"]) == 0  # the other models list; the bad one is named, once
    out = capsys.readouterr().out
    assert "counting" in out and "\x1b" not in out
    named = [line for line in out.splitlines() if "inversionview.json" in line]
    assert len(named) == 1 and named[0].startswith("does not open: ") and str(folder) in named[0], out
    assert cli_main(["sites", "--model", "counting"]) == 0  # every other model still opens
    capsys.readouterr()
    assert cli_main(["sites", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "inversionview.json" in err, err
    assert digest(folder) == before


HOSTILE_CONFIGS = {
    "architectures a number": '{"model_type": "gpt2", "architectures": 5}',
    "architectures a string": '{"model_type": "gpt2", "architectures": "GPT2LMHeadModel"}',
    "5000-digit number": '{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": ' + HUGE + "}",
    "deep nesting": '{"model_type": "gpt2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "lone surrogate": '{"model_type": "gpt2\\udc80", "architectures": ["GPT2LMHeadModel"]}',
}


def test_hostile_hub_cache_entries_break_only_themselves(tmp_path, monkeypatch, capsys):
    from engine.store.folders import find_model, list_models
    from tests.engine.store.test_hf_folders import cache_repo

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for i, text in enumerate(HOSTILE_CONFIGS.values()):
        cache_repo(cache, f"evil/case{i}", {"config.json": text.encode()})
    cache_repo(cache, "evil/\x1b[31mred", {"config.json": HOSTILE_CONFIGS["architectures a number"].encode()})
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "counting" in out
    for i, case in enumerate(HOSTILE_CONFIGS):
        named = [line for line in out.splitlines() if f"models--evil--case{i}/" in line]
        assert len(named) == 1 and named[0].startswith("does not open: "), (case, out)
    assert {e.name for e in list_models(include_cache=True)} >= {"counting", "addition"}
    assert find_model("counting").task == "counting"


@pytest.fixture(scope="module")
def text_source(tmp_path_factory):
    from tests.engine.helpers import make_text_folder

    return make_text_folder(tmp_path_factory.mktemp("text") / "text", n_layers=1, d_model=32, n_heads=2)


@pytest.mark.parametrize("case,says", [
    ("architectures a number", "names no architecture"),
    ("5000-digit number", "not valid JSON"),
    ("deep nesting", "not valid JSON"),
    ("lone surrogate", "lone surrogate"),
    ("bos id past the vocabulary", "bos_token_id must be a token id"),
    ("a flag as text", "use_parallel_residual must be true or false"),
    ("quantized", "quantized (bitsandbytes)"),
    ("shard index a number", "not a safetensors index"),
    ("shard index 5000 digits", "not valid JSON"),
    ("a pickle for weights", "nothing in it was run"),
])
def test_a_hostile_hugging_face_folder_is_one_line_naming_its_file(case, says, text_source, tmp_path, capsys):
    import shutil

    folder = tmp_path / "text"
    shutil.copytree(text_source, folder)
    config = json.loads((folder / "config.json").read_text())
    named = "config.json"
    if case in HOSTILE_CONFIGS:
        (folder / "config.json").write_text(HOSTILE_CONFIGS[case])
    elif case == "bos id past the vocabulary":
        (folder / "config.json").write_text(json.dumps({**config, "bos_token_id": 10**12}))
    elif case == "a flag as text":
        (folder / "config.json").write_text(json.dumps({**config, "use_parallel_residual": "no"}))
    elif case == "quantized":
        (folder / "config.json").write_text(json.dumps({**config, "quantization_config": {
            "quant_method": "bitsandbytes", "load_in_4bit": True}}))
    elif case == "a pickle for weights":  # torch.load(weights_only=True) refuses the date object
        import datetime

        import torch

        (folder / "model.safetensors").unlink()
        torch.save({"w": datetime.date(2020, 1, 1)}, folder / "pytorch_model.bin")
        named = "pytorch_model.bin"
    else:  # the weights in shards, and their index damaged
        (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
        index = '{"weight_map": 5}' if case == "shard index a number" else '{"weight_map": {"a": ' + HUGE + "}}"
        (folder / "model.safetensors.index.json").write_text(index)
        named = "model.safetensors.index.json"
    before = digest(folder)
    assert cli_main(["flow", "--model", str(folder), "--text", "When Mary and John went"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert named in err and says in err, err
    assert digest(folder) == before


@pytest.mark.parametrize("file", ["probed.safetensors", "decoder.safetensors"])
def test_an_extra_tensor_is_refused_from_the_header_before_any_tensor_is_read(file, source, tmp_path, monkeypatch,
                                                                               capsys):
    import shutil

    import torch

    import engine.decoder.files
    import engine.store.folders
    from engine.store.safefiles import load_tensors, save_tensors

    folder = tmp_path / "extra"
    shutil.copytree(source, folder)
    tensors, meta = load_tensors(folder / file)
    tensors["extra.huge"] = torch.zeros(4 * 2**20)  # 16 MB here; a planted one could be 100 GB
    save_tensors(folder / file, tensors, meta)
    before = digest(folder)
    reads = []
    for module in (engine.store.folders, engine.decoder.files):
        monkeypatch.setattr(module, "load_tensors", lambda *a, **k: reads.append(a) or load_tensors(*a, **k))
    code = cli_main(["query", "--model", str(folder), "--text", TEXT, "--site", "x1.post", "--position", ":",
                     "--candidates", "8"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert file in err and "unexpected extra.huge" in err
    assert [Path(a[0]).name for a in reads] == (["probed.safetensors"] if file == "decoder.safetensors" else [])
    assert digest(folder) == before


def test_a_record_the_card_cannot_be_made_from_is_one_line_and_changes_nothing(source, tmp_path, monkeypatch,
                                                                                capsys):
    import shutil

    data = tmp_path / "data"
    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(data))
    folder = data / "models" / "odd"
    shutil.copytree(source, folder)
    record = json.loads((folder / "inversionview.json").read_text())
    record["decoder"]["training"] = {"steps": "many", "schedule": {"batch_size": 8}}  # opens; no card from it
    (folder / "inversionview.json").write_text(json.dumps(record))
    before = digest(folder)
    assert cli_main(["eval-decoder", "counting", "--model", str(folder), "--queries", "1", "--record"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "inversionview.json" in err, err
    assert "CARD.md cannot be made" in err and digest(folder) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["odd"]
