"""A model folder with no decoder answers on the command line: `query` runs the local search and
prints its flip test, `sweep` maps the input with it, and asking for the decoder says how to
get one."""
from __future__ import annotations

import json

import pytest

from tests.engine.helpers import make_model_folder, run_cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("nodecoder") / "plain", "counting")


def test_query_without_a_decoder_runs_the_search(folder, tmp_path):
    out = tmp_path / "r.json"
    p = run_cli("query", "--model", str(folder), "--text", "Baiaigiaaggi|g:3", "--site", "x1.post",
                "--position", ":", "--candidates", "96", "--summary", "--json", str(out))
    assert p.returncode == 0, p.stderr
    assert "local search: 64 chains" in p.stdout and "flip test over 96 samples" in p.stdout
    assert "edit" in p.stdout  # each row says how far it sits from the query
    data = json.loads(out.read_text())
    assert data["sampler"] == "search" and data["flip_test"]["samples"] == 96
    assert len(data["samples"]) == 96


def test_asking_for_the_decoder_without_one_is_one_line(folder):
    p = run_cli("query", "--model", str(folder), "--text", "Baiaigiaaggi|g:3", "--site", "x1.post",
                "--position", ":", "--sampler", "decoder")
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "no decoder" in p.stderr and "sampler 'search'" in p.stderr


def test_the_map_runs_without_a_decoder(folder):
    p = run_cli("sweep", "--model", str(folder), "--text", "Baiaigiaaggi|g:3", "--sites", "x1.post,m1",
                "--positions", ":", "--candidates", "48")
    assert p.returncode == 0, p.stderr
    assert "2 nodes x 48 candidates" in p.stdout
