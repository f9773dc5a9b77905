"""Exported notebooks re-compute what was exported: `query`, `flow`, `sweep` and `patch` with
--notebook write a notebook next to their JSON; a real kernel (offline, started by nbclient) executes it,
and what it computes equals the JSON: the same samples and distances for the same seed, the same
route, the same map, the same patched metrics. Each notebook takes a kernel start and a torch import (about 10 s)."""
import json

import nbformat
import pytest
from nbclient import NotebookClient

from engine.cli.main import main
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # make test-fast leaves these out; CI runs them

TEXT = "Baiaigiaaggi|g:3"


def execute(path, tmp_path, dump: str) -> tuple[nbformat.NotebookNode, object]:
    """Run the notebook at `path` with one cell appended that writes `dump` (an expression of the
    notebook's variables) as JSON; the executed notebook and the value read back."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    out = tmp_path / "dump.json"
    nb.cells.append(nbformat.v4.new_code_cell(f"import json\nwith open({str(out)!r}, 'w') as f:\n"
                                              f"    json.dump({dump}, f)"))
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb, json.loads(out.read_text())


def printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_a_query_notebook_draws_the_same_samples(tmp_path, capsys):
    path, exported = tmp_path / "query.ipynb", tmp_path / "query.json"
    assert main(["query", "--model", "counting", "--text", TEXT, "--site", "x1.post", "--position", ":",
                 "--candidates", "64", "--seed", "3", "--json", str(exported), "--notebook", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    nb, again = execute(path, tmp_path, "[(s.text, s.distance, s.multiplicity) for s in result.samples]")
    want = [(s["text"], s["distance"], s["multiplicity"]) for s in json.loads(exported.read_text())["samples"]]
    assert [(t, m) for t, _, m in again] == [(t, m) for t, _, m in want]
    assert [d for _, d, _ in again] == pytest.approx([d for _, d, _ in want], abs=1e-6)
    text = printed(nb)
    assert "reproduces the export: yes" in text
    assert "recomputed" in text and "x1.post" in text  # the next-step cells ran too


def test_a_flow_notebook_rebuilds_the_same_route(tmp_path, capsys):
    path, exported = tmp_path / "flow.ipynb", tmp_path / "flow.json"
    assert main(["flow", "--model", "counting", "--text", TEXT, "--json", str(exported),
                 "--notebook", str(path)]) == 0
    capsys.readouterr()
    nb, again = execute(path, tmp_path, "[[list(s), list(d), w] for s, d, w in graph.route]")
    want = json.loads(exported.read_text())["route"]
    assert [(s, d) for s, d, _ in again] == [(e["src"], e["dst"]) for e in want] and want
    assert [w for _, _, w in again] == pytest.approx([e["weight"] for e in want], abs=1e-6)
    assert "reproduces the export: yes" in printed(nb)


def test_a_map_notebook_maps_the_same_nodes(tmp_path, capsys):
    path, exported = tmp_path / "map.ipynb", tmp_path / "map.json"
    assert main(["sweep", "--model", "counting", "--text", TEXT, "--sites", "x0.post,x1.post", "--positions", ":",
                 "--candidates", "32", "--seed", "5", "--json", str(exported), "--notebook", str(path)]) == 0
    capsys.readouterr()
    nb, again = execute(path, tmp_path, "[[r.site, r.position, r.in_epsilon, r.candidates, r.reading(), "
                                        "list(r.quantiles)] for r in m.rows]")
    want = json.loads(exported.read_text())["nodes"]
    assert len(want) == 2
    assert [a[:5] for a in again] == [[n["site"], n["position"], n["in_epsilon"], n["candidates"], n["reading"]]
                                      for n in want]
    assert [a[5] for a in again] == [pytest.approx(n["quantiles"], abs=1e-6) for n in want]
    assert "reproduces the export: yes" in printed(nb)


PATCH = ["patch", "--model", "counting", "--text", TEXT, "--flip", "2=g", "--corrupt-answer", "4"]


@pytest.mark.parametrize("extra", [[], ["--nodes", "a0.0@13,x0.post@2,a1.0@:", "--cumulative", "--reverse"]],
                         ids=["each-node", "cumulative"])
def test_a_patch_notebook_patches_to_the_same_metrics(tmp_path, capsys, extra):
    path, exported = tmp_path / "patch.ipynb", tmp_path / "patch.json"
    assert main([*PATCH, *extra, "--json", str(exported), "--notebook", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    nb, again = execute(path, tmp_path, "[report.clean, report.corrupt, [[e.node, e.metric] for e in EFFECTS]]")
    want = json.loads(exported.read_text())
    effects = want["steps"] if extra else want["effects"]
    assert len(again[2]) == len(effects) == (3 if extra else 126)
    assert [a[0] for a in again[2]] == [e["node"] for e in effects]
    assert [a[1] for a in again[2]] == pytest.approx([e["metric"] for e in effects], abs=1e-5)
    assert again[:2] == pytest.approx([want["clean"], want["corrupt"]], abs=1e-5)
    text = printed(nb)
    assert "reproduces the export: yes" in text
    assert "recomputed" in text and "patched by hand" in text  # the next-step cells ran too
    clean, corrupt = (line.split() for line in text.splitlines() if line.startswith(("clean: ", "corrupt: ")))
    assert float(clean[-1]) == pytest.approx(float(clean[-3].rstrip(",")), abs=1e-4)  # baselines from the logits
    assert float(corrupt[-1]) == pytest.approx(float(corrupt[-3].rstrip(",")), abs=1e-4)
    by_hand = next(line for line in text.splitlines() if "patched by hand" in line).split()
    assert float(by_hand[-5].rstrip(";")) == pytest.approx(float(by_hand[-1]), abs=1e-4)


@pytest.mark.parametrize("command", [
    ["query", "--site", "x1.post", "--position", ":"],
    ["flow"],
    ["sweep"],
    PATCH[:1] + PATCH[5:],
])
def test_an_unwritable_notebook_path_is_one_line_and_exit_2(tmp_path, capsys, command):
    path = tmp_path / "no" / "such" / "x.ipynb"
    assert main([command[0], "--model", "counting", "--text", TEXT, *command[1:], "--notebook", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not exist" in err
    assert not path.parent.exists()
