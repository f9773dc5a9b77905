"""The information map: each node's row is the single query there, rows stream, results are
kept for a second look, and the command line writes a row per node."""
from __future__ import annotations

import csv
import threading

import pytest

from engine.explain.sweep import NodeCache, map_nodes, reading_of, run_map, sweep_options
from engine.query.run import load_inverter, run_query
from tests.engine.helpers import run_cli

QUERY = "Baiaigiaaggi|g:3"


@pytest.fixture(scope="module")
def inv():
    return load_inverter("counting")


def test_a_node_row_equals_a_single_query_there_with_the_same_seed(inv):
    task = inv.probed.task
    options = sweep_options(task, candidates=64, seed=5)
    nodes = map_nodes(inv, task.parse_query(QUERY), ["a1.0", "x1.post"], [":", "Q"])
    assert [(s.short, p) for s, p in nodes] == [("a1.0", 13), ("a1.0", 14), ("x1.post", 13), ("x1.post", 14)]
    streamed = []
    m = run_map(inv, QUERY, nodes, options, on_row=lambda r, res, done, total: streamed.append((done, total)),
                cache=NodeCache())
    assert m.complete and streamed == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for row, (site, position) in zip(m.rows, nodes):
        single = run_query(inv, QUERY, site.short, position, options)
        assert row == reading_of(single)
        assert row.candidates == 64 and row.in_epsilon == single.in_epsilon_count
    colon = m.rows[3]
    assert colon.top is not None and colon.top.name == "count" and colon.reading() == "count = 3"


def test_a_map_opened_again_samples_nothing(inv, monkeypatch):
    task = inv.probed.task
    cache = NodeCache()
    options = sweep_options(task, candidates=32)
    nodes = map_nodes(inv, task.parse_query(QUERY), ["x0.pre", "m1"], ["1", ":"])
    first = run_map(inv, QUERY, nodes, options, cache=cache)
    import engine.query.run as query_run

    def no_sampling(*args, **kwargs):
        raise AssertionError("the cached map sampled again")

    monkeypatch.setattr(query_run, "run_query", no_sampling)
    assert run_map(inv, QUERY, nodes, options, cache=cache).rows == first.rows


def test_cancel_stops_between_nodes_and_keeps_the_rows_done(inv):
    task = inv.probed.task
    stop = threading.Event()
    nodes = map_nodes(inv, task.parse_query(QUERY), ["x1.post"], None)

    def on_row(reading, result, done, total):
        if done == 2:
            stop.set()

    m = run_map(inv, QUERY, nodes, sweep_options(task, candidates=16), on_row=on_row, cancel=stop, cache=NodeCache())
    assert not m.complete and len(m.rows) == 2 < len(nodes)


def test_the_sweep_command_writes_a_row_per_node(tmp_path):
    out = tmp_path / "map.csv"
    done = run_cli("sweep", "--model", "counting", "--text", QUERY, "--sites", "x1.post,a1.0", "--positions", "Q,:",
                   "--candidates", "32", "--csv", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [(r["site"], r["label"]) for r in rows] == [("a1.0", "Q"), ("a1.0", ":"), ("x1.post", "Q"), ("x1.post", ":")]
    assert all(0 <= float(r["share_in_epsilon"]) <= 1 for r in rows)
    assert "4 of 4 nodes" in done.stdout


@pytest.mark.parametrize("flags, says", [
    (("--positions", "99"), "position 99 is out of range"),
    (("--sites", "a7.0"), "unknown site 'a7.0'"),
    (("--candidates", "0"), "expected a number of candidates"),
])
def test_bad_sweep_flags_are_one_line(flags, says):
    done = run_cli("sweep", "--model", "counting", "--text", QUERY, *flags)
    assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
