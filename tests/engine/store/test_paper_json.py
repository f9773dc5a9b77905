"""The paper's web-viewer files (cached-generation JSON): a real query round-trips through one,
the file has exactly the paper's fields, a file as the paper's code writes it imports, and a
bad file is one line on the command line."""
import json
import math
from dataclasses import replace

import pytest

from engine.errors import StoreError
from engine.store import paper_json
from engine.store.paper_json import PAPER_KEYS, paper_file_name, read_paper_json, write_paper_json
from tests.engine.helpers import run_cli

QUERY = "Bvvzccvczvvvzvcvc|v:8"
TOL = 1e-6  # the file holds 6 decimals


@pytest.fixture(scope="module")
def inverter():
    from engine.query.run import load_inverter

    return load_inverter("counting")


@pytest.fixture(scope="module")
def result(inverter):
    from engine.query.run import run_query
    from engine.query.types import QueryOptions

    return run_query(inverter, QUERY, "x1.post", ":", QueryOptions(candidates=64, colour=True))


@pytest.fixture(scope="module")
def repeated(inverter):
    """A cold schedule, so that candidates repeat and samples have multiplicities above 1."""
    from engine.query.run import run_query
    from engine.query.types import QueryOptions

    r = run_query(inverter, QUERY, "x1.post", ":", QueryOptions(candidates=32, colour=True, schedule=((0.05, 0.0),)))
    assert any(s.multiplicity > 1 for s in r.samples)
    return r


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL


def assert_round_trip(before, after):
    assert (after.task, after.query, after.query_tokens, after.query_labels, after.query_position) == \
        (before.task, before.query, before.query_tokens, before.query_labels, before.query_position)
    assert (after.site_short, after.site_id, after.metric, after.candidates) == \
        (before.site_short, before.site_id, before.metric, before.candidates_done)
    assert [s.tokens for s in after.samples] == [s.tokens for s in before.samples]  # same ranking
    for a, b in zip(after.samples, before.samples):
        assert (a.text, a.pieces, a.labels, a.fact) == (b.text, b.pieces, b.labels, b.fact)
        assert a.well_formed == b.well_formed
        assert (a.multiplicity, a.compared_position, a.rank, a.in_epsilon) == \
            (b.multiplicity, b.compared_position, b.rank, b.in_epsilon)
        assert same(a.distance, b.distance)
        assert len(a.position_distances) == len(b.position_distances)
        assert all(same(x, y) for x, y in zip(a.position_distances, b.position_distances))
        assert len(a.prob_diff) == len(b.prob_diff) == len(b.tokens)
        assert all(same(x, y) for x, y in zip(a.prob_diff, b.prob_diff))
    assert after.summary() == before.summary()


@pytest.mark.parametrize("which", ["result", "repeated"])
def test_a_query_round_trips(request, which, tmp_path):
    before = request.getfixturevalue(which)
    path = write_paper_json(before, tmp_path / "q.json")
    after = read_paper_json(path)
    assert_round_trip(before, after)
    if which == "repeated":  # one temperature: kept; each sample's noise is 0 in the paper's fixed-temperature files
        assert after.schedule == "0.05:0" and all(s.temperature == 0.05 and s.noise == 0 for s in after.samples)
    else:  # the paper's Auto: each sample's temperature is not in the file
        assert after.schedule == "auto" and all(math.isnan(s.temperature) for s in after.samples)
    assert after.features == getattr(before, "features", after.features)
    assert [s.agrees for s in after.samples] == [getattr(s, "agrees", 0) for s in before.samples]


def test_the_file_has_exactly_the_papers_fields(result, repeated, tmp_path):
    path = write_paper_json(result, tmp_path / "q.json")
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert list(doc) == list(PAPER_KEYS) == ["query_input", "query_position", "probed_act", "attn_weights",
                                             "temperature", "metric", "generation"]
    assert doc["query_input"] == list(QUERY + "E") and doc["query_position"] == 19
    assert doc["probed_act"] == "blocks.1.hook_resid_post" and doc["attn_weights"] == []
    assert doc["temperature"] == 0.0 and doc["metric"] == "dist"  # 0.0: the paper's "Auto"
    assert paper_file_name(result) == "blocks.1.hook_resid_post-19-Auto-dist.json"
    assert len(doc["generation"]) == 64
    best = []
    for tokens, prob_diff, values, best_index, best_value in doc["generation"]:
        assert all(isinstance(t, str) for t in tokens) and len(prob_diff) == len(values) == len(tokens)
        assert isinstance(best_index, int) and values[best_index] == best_value
        assert prob_diff[0] == 0.0 and values[0] == 1000.0 and values[-1] == 1000.0  # BOS, EOS: not compared
        best.append(best_value)
    assert best == sorted(best)
    # duplicates are listed one by one, as the paper lists every candidate
    doc = json.loads(write_paper_json(repeated, tmp_path / "r.json").read_text(encoding="utf-8"))
    assert len(doc["generation"]) == sum(s.multiplicity for s in repeated.samples) == 32
    top = repeated.samples[0]
    assert [e[0] for e in doc["generation"][:top.multiplicity]] == [top.pieces] * top.multiplicity
    assert paper_file_name(repeated) == "blocks.1.hook_resid_post-19-0.05-dist.json"


def test_a_folder_gets_the_name_the_viewer_looks_for(result, tmp_path):
    path = write_paper_json(result, tmp_path)
    assert path == tmp_path / "blocks.1.hook_resid_post-19-Auto-dist.json" and path.is_file()


def test_cosine_heads_and_missing_colour(result, tmp_path):
    changed = replace(result, metric="cosine", site_short="a1.0", site_id="blocks.1.attn.hook_z[0]",
                      samples=[replace(s, prob_diff=[]) for s in result.samples])
    path = write_paper_json(changed, tmp_path / "c.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["metric"] == "sim" and doc["probed_act"] == "blocks.1.attn.hook_result.0"
    tokens, prob_diff, values, best_index, best_value = doc["generation"][0]
    assert abs(best_value - (1 - result.samples[0].distance)) <= TOL  # the paper stores the similarity
    assert values[0] == -1.0 and set(prob_diff) == {0.0}  # not compared; no colouring: the viewer's "colour off"
    back = read_paper_json(path)
    assert (back.metric, back.site_short, back.site_id) == ("cosine", "a1.0", "blocks.1.attn.hook_z[0]")
    assert all(s.prob_diff == [] for s in back.samples)
    assert all(same(a.distance, b.distance) for a, b in zip(back.samples, result.samples))


def test_a_file_as_the_papers_code_writes_it_imports(tmp_path):
    # decoder/cache_generation.py: no EOS in the query, BOS compared too, EOS filled with 1e3, 3 decimals,
    # every candidate listed (here one twice), a head site with its attention row
    near = [0.9, 1.2, 1.1, 1.0, 0.8, 0.7, 0.6, 0.5, 0.3, 0.042, 0.7, 1000.0]
    other = [0.8, 1.2, 1.1, 1.0, 0.8, 0.7, 0.6, 0.5, 0.3, 0.05, 0.7, 1000.0]
    doc = {"query_input": list("Baabcab|a:3"), "query_position": 9, "probed_act": "blocks.0.attn.hook_result.0",
           "attn_weights": [0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.1, 0.1, 0.1, 0.0], "temperature": 0.0,
           "metric": "dist", "generation": [
               [list("Bacabab|a:3E"), [0.0] + [0.1] * 11, near, 9, 0.042],
               [list("Bbaacab|a:3E"), [0.0] + [0.2] * 11, other, 9, 0.05],
               [list("Bacabab|a:3E"), [0.0] + [0.1] * 11, near, 9, 0.042],
               [list("Bcc|c:2E"), [0.0, -0.5, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1],
                [0.2, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 1000.0], 0, 0.2]]}
    path = tmp_path / "blocks.0.attn.hook_result.0-9-Auto-dist.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    r = read_paper_json(path)
    assert (r.task, r.query, r.query_position, r.query_labels[9]) == ("counting", "Baabcab|a:3", 9, ":")
    assert (r.site_short, r.site_id, r.metric, r.candidates, r.model) == ("a0.0", "blocks.0.attn.hook_z[0]",
                                                                         "euclidean", 4, "")
    assert [(s.text, s.multiplicity, s.distance, s.compared_position) for s in r.samples] == [
        ("Bacabab|a:3E", 2, 0.042, 9), ("Bbaacab|a:3E", 1, 0.05, 9), ("Bcc|c:2E", 1, 0.2, 0)]
    first, last = r.samples[0], r.samples[2]
    assert first.tokens[0] == 37 and first.fact == "3" and first.well_formed and first.in_epsilon
    assert first.position_distances[0] == 0.9 and math.isnan(first.position_distances[-1])
    assert first.prob_diff == [0.0] + [0.1] * 11 and first.marked().startswith("B a c a b a b | a (:)")
    assert last.marked().startswith("(B)") and not last.well_formed  # the paper compared BOS; the file says so
    assert r.summary() == "3 of 4 candidates within epsilon 0.1 (75%); 3 distinct samples"


def test_a_text_file_keeps_its_token_strings(tmp_path):
    """The paper's IOI and factual-recall files hold GPT-2 token strings: no task of ours has them."""
    doc = {"query_input": ["<|endoftext|>", "When", " Mary", " and", " John"], "query_position": 4,
           "probed_act": "blocks.9.attn.hook_result.9", "attn_weights": [], "temperature": 0.0, "metric": "sim",
           "generation": [[["<|endoftext|>", " Mary", "[EOS]"], [0.0, 0.3, 0.1], [0.5, 0.97, -1.0], 1, 0.97]]}
    path = tmp_path / "ioi.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    r = read_paper_json(path, epsilon=0.25)
    assert (r.task, r.query, r.site_short, r.metric) == ("", "<|endoftext|>When Mary and John", "a9.9", "cosine")
    s = r.samples[0]
    assert s.tokens == [] and s.pieces == ["<|endoftext|>", " Mary", "[EOS]"] and s.marked() == \
        "<|endoftext|> ( Mary) [EOS]"
    assert abs(s.distance - 0.03) < 1e-12 and abs(s.position_distances[0] - 0.5) < 1e-12
    assert math.isnan(s.position_distances[2]) and s.in_epsilon


def test_limits_are_one_line_store_errors(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"generation": []}) + " " * 100, encoding="utf-8")
    monkeypatch.setattr(paper_json, "MAX_FILE_BYTES", 50)
    with pytest.raises(StoreError, match=r"big.json: 1\d\d bytes, more than the 50"):
        read_paper_json(path)
    with pytest.raises(StoreError, match="file not found"):
        read_paper_json(tmp_path / "none.json")


GOOD = {"query_input": list("Baab|a:2"), "query_position": 6, "probed_act": "blocks.1.hook_resid_post",
        "attn_weights": [], "temperature": 0.0, "metric": "dist",
        "generation": [[list("Baab|a:2E"), [0.0] * 9, [1000.0] + [0.5] * 7 + [1000.0], 6, 0.5]]}


@pytest.mark.parametrize("content,message", [
    ("not json at all", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep, more than the 8"),
    (json.dumps({"a": [[[[[[[[[1]]]]]]]]]}), "nested 10 levels deep"),
    (json.dumps([1, 2]), "holds a list, not an object with query_input"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "generation"}), "missing generation"),
    (json.dumps({**GOOD, "query_position": "six"}), "query_position must be a whole number, got 'six'"),
    (json.dumps({**GOOD, "query_position": 40}), "query_position must be from 0 to 7, got 40"),
    (json.dumps({**GOOD, "metric": "euclid"}), "metric must be \"dist\" or \"sim\", got 'euclid'"),
    (json.dumps({**GOOD, "probed_act": "blocks.x.bad"}), "probed_act 'blocks.x.bad' is not a site name"),
    (json.dumps({**GOOD, "generation": [GOOD["generation"][0][:4]]}), "generation[0] must be a list of 5"),
    (json.dumps({**GOOD, "generation": [[list("Baab|a:2E"), [0.0] * 9, [0.5] * 3, 6, 0.5]]}),
     "generation[0] has 9 tokens but 3 metric values"),
    (json.dumps({**GOOD, "generation": [[list("Baab|a:2E"), [0.0] * 9, [0.5] * 9, 6, "0.5"]]}),
     "generation[0] best value must be a number, got '0.5'"),
    (json.dumps({**GOOD, "generation": [[list("Baab|a:2E"), [0.0] * 9, [0.5] * 9, 9, 0.5]]}),
     "generation[0] best index must be from 0 to 8, got 9"),
    # what json.loads refuses past JSONDecodeError, or takes but nothing after it can use
    (json.dumps(GOOD).replace('"query_position": 6', '"query_position": ' + "9" * 5000),
     "not valid JSON (Exceeds the limit (4300 digits)"),
    (json.dumps(GOOD).replace('"temperature": 0.0', '"temperature": ' + "9" * 400),
     "temperature must be a number a float can hold, got an integer of 400 digits"),
    (json.dumps({**GOOD, "query_input": ["B", "\udc80"] + GOOD["query_input"][2:]}),
     "query_input[1] holds a lone surrogate"),
])
def test_a_bad_file_is_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    done = run_cli("show-json", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {path}: ") and message in done.stderr, done.stderr


def test_show_json_prints_like_query(result, tmp_path):
    path = write_paper_json(result, tmp_path / "q.json")
    done = run_cli("show-json", str(path), "--top", "5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"query {QUERY}E at x1.post (blocks.1.hook_resid_post), position 19 (':'); "
                        "model (not recorded), euclidean, epsilon 0.1")
    assert lines[1].split() == ["rank", "x", "distance", "bar", "count", "sample"]
    top = result.samples[0]
    assert lines[2].split()[:4] == ["1", str(top.multiplicity), f"{top.distance:.4f}", lines[2].split()[3]]
    assert lines[2].endswith(top.marked()) and f" {top.fact} " in lines[2]
    assert lines[-2] == f"... {len(result.samples) - 5} more distinct samples"
    assert lines[-1] == result.summary()


def test_query_writes_a_paper_json_file(tmp_path):
    out = tmp_path / "q.json"
    done = run_cli("query", "--model", "counting", "--text", QUERY, "--site", "x1.post", "--position", ":",
                   "--candidates", "16", "--top", "3", "--paper-json", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"wrote {out}"
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert list(doc) == list(PAPER_KEYS) and len(doc["generation"]) == 16
    assert any(any(p != 0 for p in entry[1]) for entry in doc["generation"])  # real prob-diff colouring
    assert read_paper_json(out).candidates == 16


def test_query_refuses_a_paper_json_path_in_a_missing_folder(capsys):
    from engine.cli.main import main

    args = ["query", "--model", "counting", "--text", QUERY, "--site", "x1.post", "--position", ":",
            "--paper-json", "/no/such/dir/q.json"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "error: cannot write /no/such/dir/q.json: folder /no/such/dir does not exist\n"


def test_show_json_shows_a_files_terminal_escapes_and_never_obeys_them(tmp_path):
    """A token holding a terminal escape (clear screen) is printed as its escape, on its one line."""
    evil = "a\x1b[2J"
    doc = {**GOOD, "generation": [[["B", evil, "a", "b", "|", "a", ":", "2", "E"], [0.0] * 9,
                                   [1000.0] + [0.5] * 7 + [1000.0], 6, 0.5]]}
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    done = run_cli("show-json", str(path))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout + done.stderr, (done.stdout + done.stderr)[-500:]
    assert "B a\\x1b[2J a b" in done.stdout  # the sample, its escape written out
