"""The InversionView paper's own checkpoints: Hugging Face GPT-2 folders of a task's model.

Each test builds such a folder here (random weights, the task's vocabulary and special ids,
`pytorch_model.bin` as a plain state dict, no tokenizer files) and opens it the way a user would.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from engine.cli.main import main as cli_main
from engine.errors import StoreError
from engine.probed.model import PAPER_CONFIGS
from engine.probed.reader import SiteReader, reader_for
from engine.probed.sites import all_sites, read_sites
from engine.store.folders import STUDIO_FILE, find_model, load_probed, open_folder
from engine.tasks import TASKS

COUNTING_TEXT = "Baiaigiaaggi|g:3"


def paper_folder(folder: Path, task: str = "counting", seed: int = 0, **overrides) -> Path:
    """A GPT2LMHeadModel folder shaped like the paper's published checkpoints."""
    from transformers import GPT2Config, GPT2LMHeadModel

    pc, t = PAPER_CONFIGS[task], TASKS[task]
    settings = dict(vocab_size=pc.d_vocab, n_positions=pc.n_ctx, n_embd=pc.d_model, n_layer=pc.n_layers,
                    n_head=pc.n_heads, n_inner=None, activation_function="gelu_new", bos_token_id=t.bos_id,
                    eos_token_id=t.eos_id, pad_token_id=t.pad_id, architectures=["GPT2LMHeadModel"])
    settings.update(overrides)
    config = GPT2Config(**settings)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    folder.mkdir(parents=True)
    config.to_json_file(str(folder / "config.json"))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # what an older Trainer wrote
    return folder


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def counting_folder(tmp_path_factory):
    return paper_folder(tmp_path_factory.mktemp("paper") / "counting-paper")


@pytest.mark.parametrize("task", ["counting", "addition"])
def test_a_paper_checkpoint_opens_as_its_task_and_reads_like_the_bridge(tmp_path, task):
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import GPT2LMHeadModel

    folder = paper_folder(tmp_path / f"{task}-paper", task)
    entry = find_model(str(folder))
    assert entry.task == task and entry.huggingface == {"model_type": "gpt2"}
    assert entry.probed.act_fn == "gelu_new" and entry.probed.n_ctx == PAPER_CONFIGS[task].n_ctx
    ours = load_probed(entry)
    theirs = TransformerBridge.boot_transformers(str(folder), device="cpu")  # the field's own GPT-2 path
    t = TASKS[task]
    ids = t.encode(COUNTING_TEXT if task == "counting" else "B615+861=1476")
    tokens = torch.tensor([ids, ids[:-3] + [t.pad_id] * 3])
    sites = all_sites(ours.config)
    expected = read_sites(theirs, tokens, sites)
    reader = reader_for(ours)  # a toy task's model, whatever its folder: the fused reader
    assert isinstance(reader, SiteReader)
    for site in sites:
        got = reader.read(tokens, site)
        assert torch.allclose(got, expected[site.short], atol=1e-5), site.short
    hf = GPT2LMHeadModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        assert torch.allclose(ours.bridge(tokens), hf(tokens).logits, atol=1e-4)


def test_the_commands_work_on_a_paper_checkpoint_and_leave_its_files_alone(counting_folder, capsys):
    before = digest(counting_folder)
    assert cli_main(["sites", "--model", str(counting_folder)]) == 0
    assert "a1.0     blocks.1.attn.hook_z[0]" in capsys.readouterr().out
    assert cli_main(["eval-probed", "counting", "--model", str(counting_folder), "--limit", "40"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert cli_main(["flow", "--model", str(counting_folder), "--text", COUNTING_TEXT]) == 0
    capsys.readouterr()
    assert digest(counting_folder) == before  # reading writes nothing


def test_a_decoder_trained_for_a_paper_checkpoint_sits_beside_its_files(tmp_path, capsys):
    folder = paper_folder(tmp_path / "counting-paper")
    hf_before = (folder / "config.json").read_bytes(), (folder / "pytorch_model.bin").read_bytes()
    assert cli_main(["train-decoder", "counting", "--model", str(folder), "--steps", "3", "--check-every", "0",
                     "--d-model", "32", "--layers", "1", "--heads", "2", "--batch-size", "8"]) == 0
    assert ((folder / "config.json").read_bytes(), (folder / "pytorch_model.bin").read_bytes()) == hf_before
    record = json.loads((folder / STUDIO_FILE).read_text())
    assert record["huggingface"] == {"model_type": "gpt2"} and record["decoder"]["training"]["steps"] == 3
    assert record["name"] == "counting-paper" and record["task"] == "counting"
    entry = open_folder(folder)
    assert entry.has_decoder and entry.huggingface
    capsys.readouterr()
    assert cli_main(["query", "--model", str(folder), "--text", COUNTING_TEXT, "--site", "x1.post",
                     "--position", ":", "--candidates", "16", "--top", "3"]) == 0
    assert "x1.post" in capsys.readouterr().out


def test_a_user_model_made_from_a_paper_checkpoint_holds_its_weights(counting_folder, tmp_path, monkeypatch):
    from engine.decoder.job import new_user_model

    monkeypatch.setenv("INVERSIONVIEW_DATA_DIR", str(tmp_path / "data"))
    made = new_user_model(find_model(str(counting_folder)), "from-paper")
    assert made.source == "user" and not made.huggingface and (made.path / "probed.safetensors").is_file()
    a, b = load_probed(made).bridge.state_dict(), load_probed(find_model(str(counting_folder))).bridge.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/ivs-pickle-ran",))


def test_bad_checkpoints_are_one_line_and_nothing_runs(tmp_path, capsys):
    Path("/tmp/ivs-pickle-ran").unlink(missing_ok=True)
    evil = paper_folder(tmp_path / "evil")
    torch.save({"w": Boom()}, evil / "pytorch_model.bin")
    no_weights = paper_folder(tmp_path / "empty")
    (no_weights / "pytorch_model.bin").unlink()
    other_vocab = paper_folder(tmp_path / "other", vocab_size=50)
    remote = paper_folder(tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XModel"}
    (remote / "config.json").write_text(json.dumps(config))
    swapped = paper_folder(tmp_path / "swapped", bos_token_id=0)  # counting's size, other special ids
    cases = [(evil, "nothing in it was run"), (no_weights, "no weights"), (other_vocab, "no tokenizer"),
             (remote, "never runs"), (swapped, "give --task")]
    for folder, says in cases:
        before = digest(folder)
        assert cli_main(["flow", "--model", str(folder), "--text", COUNTING_TEXT]) == 2, folder.name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and says in err, (folder.name, err)
        assert digest(folder) == before
    assert not Path("/tmp/ivs-pickle-ran").exists()
    with pytest.raises(StoreError, match="the addition task has 15"):
        find_model(str(swapped), task="addition")
    assert find_model(str(swapped), task="counting").task == "counting"  # --task says which it is
    assert cli_main(["sites", "--model", str(swapped), "--task", "counting"]) == 0


def cache_repo(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = "0123abcd", main: bool = True):
    """One repository in the hub cache's layout: blobs, a snapshot of links to them, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(blob)
    if main:
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(revision)
    return snapshot


def test_the_hub_cache_is_searched_offline_and_its_models_open_by_id(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    paper = paper_folder(tmp_path / "src")
    files = {name: (paper / name).read_bytes() for name in ("config.json", "pytorch_model.bin")}
    snapshot = cache_repo(cache, "someone/counting-paper", files)
    cache_repo(cache, "someone/counting-paper-old", files, revision="ffff", main=False)  # no refs/main
    gpt2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 50257, "n_embd": 768,
            "n_layer": 12, "n_head": 12, "n_positions": 1024}
    cache_repo(cache, "gpt2", {"config.json": json.dumps(gpt2).encode()})
    cache_repo(cache, "bert-base", {"config.json": json.dumps({"model_type": "bert",
                                                                "architectures": ["BertModel"]}).encode()})
    cache_repo(cache, "broken", {"config.json": b"{not json"})
    before = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file() and not p.is_symlink()}

    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert "3 causal language model(s)" in out and "bert-base" not in out
    broken = [x for x in out.splitlines() if "broken" in x]  # named once, as not opening, and why
    assert len(broken) == 1 and broken[0].startswith("does not open: ") and "not valid JSON" in broken[0]
    line = next(x for x in out.splitlines() if x.startswith("someone/counting-paper "))
    assert "opens as the counting task" in line
    assert "does not open: no weights" in next(x for x in out.splitlines() if x.startswith("gpt2 "))

    entry = find_model("someone/counting-paper")
    assert entry.source == "hub" and entry.path == snapshot and entry.task == "counting"
    assert find_model("someone/counting-paper-old").path.name == "ffff"  # the newest snapshot without a ref
    assert cli_main(["train-decoder", "counting", "--model", "someone/counting-paper", "--steps", "1"]) == 2
    assert "in the Hugging Face cache" in capsys.readouterr().err
    assert cli_main(["flow", "--model", "gpt2", "--text", COUNTING_TEXT]) == 2
    assert "no weights (expected one of model.safetensors" in capsys.readouterr().err
    assert before == {p: p.read_bytes() for p in cache.rglob("*") if p.is_file() and not p.is_symlink()}
