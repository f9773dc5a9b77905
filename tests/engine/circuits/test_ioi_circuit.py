"""The IOI circuit study on the bundled ioi model: direct effects that add up, the S2 corruption,
and the circuit the card reports (layer-3 heads that attend to S2 and suppress the subject)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.circuits.ioi import held_out, read_prompt, s2_flipped, study
from engine.flow.readout import FinalNorm
from engine.store.folders import find_model, load_probed


@pytest.fixture(scope="module")
def probed():
    return load_probed(find_model("ioi"))


def test_direct_effects_of_every_component_add_up_to_the_logit_difference(probed):
    """Heads (read by the study) + attention biases + MLPs + embeddings + the final bias, each
    through the final norm frozen at END, give the model's own IO - S logit difference."""
    task, bridge = probed.task, probed.bridge
    n_layers = probed.config.n_layers
    for prompt in held_out(task, 3):
        reading, _ = read_prompt(probed, prompt)
        ids = task.encode(prompt.text)
        pos = task.ioi_positions(ids)
        end, io, s = pos["END"], ids[pos["END"] + 1], ids[pos["S1"]]
        cache = {}
        names = {"blocks.0.hook_resid_pre": "embed", f"blocks.{n_layers - 1}.hook_resid_post": "final",
                 **{f"blocks.{L}.hook_mlp_out": f"m{L}" for L in range(n_layers)}}

        def keeper(key: str, cache=cache):
            def keep(x, hook):  # hook.name may be the bridge's own name for an alias: key by ours
                cache[key] = x
            return keep

        hooks = [(name, keeper(key)) for name, key in names.items()]
        with torch.inference_mode():
            logits = bridge.run_with_hooks(torch.tensor([ids]), fwd_hooks=hooks)
            norm = FinalNorm.of(bridge)
            w_u = bridge.W_U.float()
            direction = w_u[:, io] - w_u[:, s]
            scale = norm.scale(cache["final"][0, end])
            rest = [cache["embed"][0, end]] + [cache[f"m{L}"][0, end] for L in range(n_layers)]
            rest += [bridge.blocks[L].attn.b_O for L in range(n_layers)]
            others = sum(float(norm.centred_weighted(v.float()) @ direction / scale) for v in rest)
            bias = 0.0
            if norm.bias is not None:
                bias += float(norm.bias @ direction)
            b_u = getattr(bridge, "b_U", None)
            if b_u is not None:
                bias += float(b_u[io] - b_u[s])
        total = float(reading.dla.sum()) + others + bias
        assert total == pytest.approx(float(logits[0, end, io] - logits[0, end, s]), abs=2e-3)
        assert reading.logit_diff == pytest.approx(float(logits[0, end, io] - logits[0, end, s]), abs=1e-4)
        assert np.allclose(reading.dla, reading.on_io - reading.on_s)


def test_the_s2_corruption_names_the_io_twice_and_asks_for_s(probed):
    task = probed.task
    for prompt in held_out(task, 10):
        flipped = task.parsed(task.tokenize(s2_flipped(prompt)))
        assert flipped is not None and flipped.template % 30 == prompt.template % 30  # the twin template
        assert flipped.order != prompt.order
        assert (flipped.io, flipped.s) == (prompt.s, prompt.io)  # the duplicate now names IO, the answer is S


def test_the_bundled_circuit(probed):
    """The circuit the card reports, re-measured on fresh held-out prompts."""
    c = study(probed, prompts=40, patched=8, seed=3)
    assert c.accuracy == 1.0 and c.logit_diff > 8
    movers = c.name_movers()
    assert set(movers[:2]) == {"a3.3", "a3.0"}
    for name in ("a3.3", "a3.0"):
        layer, head = (int(x) for x in name[1:].split("."))
        assert c.attention["END>S2"][layer, head] > 0.9  # they read the subject's duplicate ...
        assert c.on_s[layer, head] < -2 and c.on_s[layer, head] < c.on_io[layer, head]  # ... and suppress S
    assert c.patch_end[3, 3] + c.patch_end[3, 0] > 0.8  # together they carry most of the effect at END
    assert min(c.patch_resid_s2[:3]) > 0.9  # the residual stream at S2 carries all of it below layer 3


def test_ioi_circuit_records_its_figures_in_the_card_and_keeps_the_bundled_model(tmp_path, capsys):
    import json
    import shutil

    from engine.cli.main import main as cli_main
    from engine.store.folders import BUNDLED_DIR

    bundled = BUNDLED_DIR / "ioi"
    before = {p.name: p.read_bytes() for p in bundled.iterdir()}
    assert cli_main(["ioi-circuit", "--count", "5", "--patched", "1", "--no-inversion", "--record"]) == 2
    assert "is bundled" in capsys.readouterr().err
    assert before == {p.name: p.read_bytes() for p in bundled.iterdir()}

    folder = tmp_path / "ioi-copy"
    shutil.copytree(bundled, folder)
    assert cli_main(["ioi-circuit", "--model", str(folder), "--count", "10", "--patched", "2", "--no-inversion",
                     "--record"]) == 0
    printed = capsys.readouterr().out
    record = json.loads((folder / "inversionview.json").read_text(encoding="utf-8"))["circuit"]
    assert record["prompts"] == 10 and record["name_movers"][:2] and record["name_movers"][0] in printed
    card = (folder / "CARD.md").read_text(encoding="utf-8")
    assert "## The circuit" in card and "|---|---|---|---|---|" in card
    assert "ioi: a GPT-2-architecture model that does IOI" in card  # still the ioi model's own card
    assert f"{record['logit_diff']:.2f}" in card
