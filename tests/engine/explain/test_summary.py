"""The preimage summary: shares and base rates weighted by multiplicity, verdicts, and the
counting model's headline reading (x1.post at ':' holds the count of the query letter)."""
from __future__ import annotations

import pytest

from engine.explain.summary import MIN_CANDIDATES, summarize, verdict, with_features
from engine.query.types import QueryResult, SampleResult
from engine.tasks import get_task


def _sample(task, text: str, distance: float, multiplicity: int, epsilon: float = 0.1) -> SampleResult:
    ids = task.tokenize(text)
    labels = task.position_labels(ids)
    return SampleResult(text=task.detokenize(ids), tokens=ids, labels=labels, multiplicity=multiplicity,
                        distance=distance, compared_position=labels.index(":") if ":" in labels else 1,
                        position_distances=[], temperature=1.0, noise=0.0, fact=task.fact(ids),
                        well_formed=task.check(task.detokenize(ids)).well_formed, in_epsilon=distance <= epsilon,
                        pieces=task.vocab.token_strings(ids))


def _result(task, query: str, samples: list[SampleResult]) -> QueryResult:
    ids = task.tokenize(query)
    labels = task.position_labels(ids)
    return QueryResult(model="m", task=task.name, query=task.detokenize(ids), query_tokens=ids, query_labels=labels,
                       query_position=labels.index(":"), site_short="x1.post", site_id="blocks.1.hook_resid_post",
                       metric="euclidean", epsilon=0.1, candidates=sum(s.multiplicity for s in samples),
                       samples=samples)


def test_shares_and_base_rates_are_exact_on_a_constructed_result():
    task = get_task("counting")
    samples = [
        _sample(task, "Baaabbc|a:3", 0.02, 4),   # count 3, query a, letters abc, length 6
        _sample(task, "Bcccabb|c:3", 0.05, 2),   # count 3, query c, letters abc, length 6
        _sample(task, "Baabbcc|a:2", 0.08, 1),   # count 2, query a
        _sample(task, "Bxxxyz|x:3", 0.30, 3),    # outside epsilon: count 3, other letters, length 5
        _sample(task, "Baabc|b:1", 0.40, 2),     # outside epsilon: count 1
    ]
    s = summarize(with_features(_result(task, "Baaabbc|a:3", samples), task))
    by = {f.name: f for f in s.features}
    assert (s.in_epsilon, s.candidates) == (7, 12)
    assert by["count"].share == pytest.approx(6 / 7) and by["count"].base_rate == pytest.approx(9 / 12)
    assert by["query letter"].share == pytest.approx(5 / 7) and by["query letter"].base_rate == pytest.approx(5 / 12)
    assert by["letters"].share == pytest.approx(1.0) and by["letters"].base_rate == pytest.approx(9 / 12)
    assert by["length"].share == pytest.approx(7 / 7) and by["length"].base_rate == pytest.approx(7 / 12)
    assert by["length"].verdict == "shared"  # 100% within, 58% overall
    assert by["letters"].verdict == "shared"  # 100% within, 75% overall: lift 0.25
    assert by["count"].verdict == "partly"  # 86% within (below 90%), 75% overall: lift 0.11
    assert by["query letter"].verdict == "partly"  # 71% within, 42% overall


def test_verdict_thresholds():
    assert verdict(0.95, 0.30, 50) == "shared"
    assert verdict(0.95, 0.92, 50) == "everywhere"  # every candidate has it: the activation may not
    assert verdict(0.60, 0.30, 50) == "partly"
    assert verdict(0.60, 0.55, 50) == "not shared"
    assert verdict(1.0, 0.0, MIN_CANDIDATES - 1) == "too few"


def test_counting_x1_post_at_colon_shares_the_count():
    """The paper's reading, re-checked against the samples' own tokens."""
    from engine.query.run import load_inverter, run_query
    from engine.query.types import QueryOptions

    inv = load_inverter("counting")
    task = inv.probed.task
    r = run_query(inv, "Baiaigiaaggi|g:3", "x1.post", ":", QueryOptions(candidates=256, colour=False))
    s = summarize(r)
    assert summarize(with_features(r, task)) == s  # the bits filled while sampling are the ones recomputed
    count = next(f for f in s.features if f.name == "count")
    assert count.verdict == "shared", s.line()
    # recount the query letter in each in-epsilon sample's own text
    n_in = agree = 0
    for smp in r.samples:
        text = task.detokenize(smp.tokens)
        body, _, tail = text[1:].partition("|")
        if smp.in_epsilon:
            n_in += smp.multiplicity
            agree += smp.multiplicity * (tail[:1] != "" and body.count(tail[0]) == 3)
    assert n_in == s.in_epsilon and count.share == pytest.approx(agree / n_in)
    assert s.line().startswith("within epsilon: count = 3 in")


def test_the_summary_is_in_the_json_and_csv_exports(tmp_path):
    import csv
    import json

    from engine.store.export import write_csv, write_json

    task = get_task("counting")
    samples = [_sample(task, "Baaabbc|a:3", 0.02, 4), _sample(task, "Bxxxyz|x:3", 0.30, 3),
               _sample(task, "Baabbcc|a:2", 0.05, 1)]
    result = with_features(_result(task, "Baaabbc|a:3", samples), task)
    data = json.loads(write_json(result, tmp_path / "r.json").read_text(encoding="utf-8"))
    by = {f["name"]: f for f in data["summary"]["features"]}
    assert by["count"]["share"] == pytest.approx(4 / 5) and by["count"]["base_rate"] == pytest.approx(7 / 8)
    assert data["summary"]["in_epsilon"] == 5
    assert [set(s["shares"]) for s in data["samples"]] == [
        {"count", "query letter", "letters", "length", "compared at"}, {"count", "compared at"},
        {"query letter", "letters", "length", "compared at"}]
    with open(write_csv(result, tmp_path / "r.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[1]["shares"] == "count=3; compared at=:"
