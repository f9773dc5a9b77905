"""InversionView queries on a small model folder: distances, ranking, streaming, cancel, CSV."""
import csv
import threading
from collections import Counter
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

from engine.decoder.sampling import draw, generate
from engine.errors import Cancelled, OutputError, SiteError, StoreError
from engine.query.run import load_inverter, run_query
from engine.query.types import QueryAccumulator, QueryOptions
from engine.store.export import write_csv
from tests.engine.helpers import make_model_folder

# these tests are about the decoder's samples: under auto a weak decoder is extended by the search
Opts = partial(QueryOptions, sampler="decoder")

QUERY = "Baiaigiaaggi|g:3"


@pytest.fixture(scope="module")
def inv(tmp_path_factory):
    folder = make_model_folder(tmp_path_factory.mktemp("q") / "tiny-count", "counting", decoder_steps=40)
    return load_inverter(str(folder))


@pytest.fixture(scope="module")
def streamed(inv):
    chunks = []
    opts = Opts(candidates=192, chunk_size=64, seed=3, epsilon=0.3)
    result = run_query(inv, QUERY, "x0.mid", ":", opts, on_chunk=chunks.append)
    return result, chunks


def reference_distance(inv, tokens, site_short, z_q):
    """Independent: a full forward pass with run_with_cache, then numpy over non-special positions."""
    _, cache = inv.probed.bridge.run_with_cache(torch.tensor([tokens]))
    hook = {"x0.mid": "blocks.0.hook_resid_mid", "a1.0": "blocks.1.attn.hook_z"}[site_short]
    acts = cache[hook][0]
    if site_short == "a1.0":
        acts = acts[:, 0] @ inv.probed.bridge.blocks[1].attn.W_O[0]
    acts = acts.detach().numpy()
    task = inv.probed.task
    keep = [i for i, t in enumerate(tokens) if t not in (task.bos_id, task.eos_id, task.pad_id)]
    d = np.linalg.norm(acts[keep] - z_q, axis=1) / np.linalg.norm(z_q)
    return float(d.min()), keep[int(d.argmin())]


def query_activation(inv, site_short, position):
    _, cache = inv.probed.bridge.run_with_cache(torch.tensor([inv.probed.task.parse_query(QUERY)]))
    return cache["blocks.0.hook_resid_mid"][0, position].detach().numpy()


def test_distances_match_an_independent_forward_pass(inv, streamed):
    result, _ = streamed
    z_q = query_activation(inv, "x0.mid", 14)
    # samples of many lengths, so the re-run's length groups are all exercised
    assert len({len(s.tokens) for s in result.samples}) >= 5
    for s in result.samples:
        if not np.isfinite(s.distance):
            continue
        d, pos = reference_distance(inv, s.tokens, "x0.mid", z_q)
        assert s.distance == pytest.approx(d, rel=1e-4, abs=1e-5)
        assert s.compared_position == pos
        assert s.marked().split(" ")[pos] == f"({s.text[pos]})"


def test_ranking_multiplicity_and_epsilon_flags(streamed):
    result, _ = streamed
    dists = [s.distance for s in result.samples]
    assert dists == sorted(dists)
    assert [s.rank for s in result.samples] == list(range(1, len(dists) + 1))
    assert sum(s.multiplicity for s in result.samples) == 192 == result.candidates_done
    assert len({s.text for s in result.samples}) == len(result.samples)
    assert all(s.in_epsilon == (s.distance <= 0.3) for s in result.samples)
    tighter = result.with_epsilon(0.05)
    assert [s.text for s in tighter.samples] == [s.text for s in result.samples]
    assert tighter.in_epsilon_count == sum(s.multiplicity for s in result.samples if s.distance <= 0.05)
    assert "of 192 candidates within epsilon 0.3" in result.summary()


def test_compared_positions_skip_bos_eos_and_pad(inv, streamed):
    result, _ = streamed
    task = inv.probed.task
    for s in result.samples:
        if np.isfinite(s.distance):
            assert s.tokens[s.compared_position] not in (task.bos_id, task.eos_id, task.pad_id)
            assert np.isnan(s.position_distances[0])


def test_streamed_chunks_add_up_to_the_result(streamed):
    result, chunks = streamed
    assert [c.done for c in chunks] == [64, 128, 192]
    merged = Counter()
    for c in chunks:
        merged.update({s.text: s.multiplicity for s in c.samples})
    assert merged == Counter({s.text: s.multiplicity for s in result.samples})
    acc = QueryAccumulator(replace(result, samples=[]))
    for c in chunks:
        acc.add(c)
    assert [(s.text, s.rank) for s in acc.result().samples] == [(s.text, s.rank) for s in result.samples]


def test_same_seed_same_samples(inv, streamed):
    result, _ = streamed
    again = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=192, chunk_size=64, seed=3, epsilon=0.3))
    assert [(s.text, s.multiplicity) for s in again.samples] == [(s.text, s.multiplicity) for s in result.samples]


def test_task_facts_and_prob_diff(inv, streamed):
    result, _ = streamed
    task = inv.probed.task
    for s in result.samples[:20]:
        if task.check(s.text).well_formed:
            letters, tail = s.text[1:].split("|")
            assert s.fact == str(letters.count(tail[0]))
        assert len(s.prob_diff) == len(s.tokens) and s.prob_diff[0] == 0
        assert all(-1.0 <= p <= 1.0 for p in s.prob_diff)


def test_prob_diff_matches_each_sample_decoded_alone(inv, streamed):
    """Independent: each sample teacher-forced on its own (no padding, no grouping), under the
    query's activation and under BOS's, with the probabilities read off by hand."""
    result, _ = streamed
    d = inv.decoder
    _, cache = inv.probed.bridge.run_with_cache(torch.tensor([inv.probed.task.parse_query(QUERY)]))
    acts = cache["blocks.0.hook_resid_mid"][0]
    site = torch.tensor([[x.short for x in inv.sites].index("x0.mid")])  # its index in the decoder
    for s in result.samples[::7]:
        tokens = torch.tensor([s.tokens])
        with torch.inference_mode():
            p_q = torch.softmax(d(tokens[:, :-1], acts[14][None], site), -1)[0]  # (T-1, V)
            p_b = torch.softmax(d(tokens[:, :-1], acts[0][None], site), -1)[0]
        nxt = tokens[0, 1:]
        expected = [0.0] + (p_q[range(len(nxt)), nxt] - p_b[range(len(nxt)), nxt]).tolist()
        assert s.prob_diff == pytest.approx(expected, abs=1e-5)


def test_head_site(inv):
    r = run_query(inv, QUERY, "a1.0", "Q", Opts(candidates=32, chunk_size=32))
    _, cache = inv.probed.bridge.run_with_cache(torch.tensor([inv.probed.task.parse_query(QUERY)]))
    z_q = (cache["blocks.1.attn.hook_z"][0, 13, 0] @ inv.probed.bridge.blocks[1].attn.W_O[0]).detach().numpy()
    s = next(s for s in r.samples if np.isfinite(s.distance))
    assert s.distance == pytest.approx(reference_distance(inv, s.tokens, "a1.0", z_q)[0], rel=1e-4)


def test_cancel_from_a_chunk_callback_returns_partial_result(inv):
    cancel = threading.Event()
    r = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=256, chunk_size=32),
                  on_chunk=lambda c: cancel.set(), cancel=cancel)
    assert not r.complete and r.candidates_done == 32


class CountingEvent(threading.Event):
    """Reports 'set' from its n-th check on: shows how often generation looks."""

    def __init__(self, n):
        super().__init__()
        self.checks, self.n = 0, n

    def is_set(self):
        self.checks += 1
        return self.checks >= self.n


def test_draw_follows_the_softmax_distribution():
    """Frequencies of 200,000 draws match softmax(logits); a -inf logit is never drawn."""
    probs = torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625, 0.0])
    logits = probs.log().expand(200_000, -1).contiguous()  # (N, 6), last entry -inf
    tokens = draw(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(tokens, minlength=6).double() / len(tokens)
    # binomial standard error is at most 0.0011 here; 0.005 is over four of them
    assert torch.allclose(freq, probs.double(), atol=0.005)
    assert freq[-1] == 0
    same = draw(logits[:1000], torch.Generator().manual_seed(0))
    assert torch.equal(same, tokens[:1000])  # seeded: the same draws again


def test_cancel_is_checked_every_decoding_step(inv):
    task = inv.probed.task
    event = CountingEvent(3)
    d = inv.decoder
    z = torch.zeros(8, d.cfg.d_act)
    with pytest.raises(Cancelled):
        generate(d, z, torch.zeros(8, dtype=torch.long), torch.ones(8), task.bos_id, task.eos_id, task.pad_id,
                 cancel=event)
    assert event.checks == 3  # stopped at the third step, not at the end of the sequence


def test_generated_sequences_stop_at_eos(inv):
    task = inv.probed.task
    z = torch.randn(64, inv.decoder.cfg.d_act)
    out = generate(inv.decoder, z, torch.zeros(64, dtype=torch.long), torch.ones(64), task.bos_id, task.eos_id,
                   task.pad_id, generator=torch.Generator().manual_seed(0))
    for row in out.tolist():
        if task.eos_id in row:
            end = row.index(task.eos_id)
            assert all(t == task.pad_id for t in row[end + 1:])
        if task.pad_id in row:  # a PAD the decoder emits ends the sequence too
            stop = row.index(task.pad_id)
            assert all(t == task.pad_id for t in row[stop:])


def test_a_decoder_that_emits_pad_ends_the_sequence_there(inv):
    """Force PAD at every step: each sequence must stop at once, leaving BOS then padding."""
    task, d = inv.probed.task, inv.decoder
    bias = torch.zeros(d.cfg.d_vocab)
    bias[task.pad_id] = 1e4
    original = d.logits_of
    d.logits_of = lambda x: original(x) + bias
    try:
        out = generate(d, torch.zeros(4, d.cfg.d_act), torch.zeros(4, dtype=torch.long), torch.ones(4),
                       task.bos_id, task.eos_id, task.pad_id)
    finally:
        d.logits_of = original
    assert out[:, 0].tolist() == [task.bos_id] * 4
    assert (out[:, 1:] == task.pad_id).all()


def test_bad_query_input(inv):
    with pytest.raises(SiteError, match="was not trained on site attn0"):
        run_query(inv, QUERY, "attn0", ":", QueryOptions(sampler="decoder"))
    with pytest.raises(SiteError, match="unknown site"):
        run_query(inv, QUERY, "zz", ":")


def test_csv_contents_read_back(streamed, tmp_path):
    result, _ = streamed
    path = write_csv(result, tmp_path / "out.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.samples)
    first, s = rows[0], result.samples[0]
    assert first["rank"] == "1" and first["sample"] == s.text and first["marked_sample"] == s.marked()
    assert float(first["distance"]) == pytest.approx(s.distance, abs=1e-6)
    assert first["count"] == s.fact and first["site"] == "x0.mid" and first["site_hook"] == "blocks.0.hook_resid_mid"
    assert first["query"] == "Baiaigiaaggi|g:3E" and first["query_label"] == ":" and first["query_position"] == "14"
    assert sum(int(r["multiplicity"]) for r in rows) == 192
    assert [r["in_epsilon"] for r in rows] == [str(x.in_epsilon) for x in result.samples]


def test_csv_neutralises_formulas(streamed, tmp_path):
    result, _ = streamed
    evil = replace(result, model="=HYPERLINK(\"http://x\")", query="+1", samples=[
        replace(result.samples[0], fact="@SUM(A1)"), replace(result.samples[1], fact="-2")])
    path = write_csv(evil, tmp_path / "evil.csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8", newline="")))
    assert rows[0]["model"] == "'=HYPERLINK(\"http://x\")" and rows[0]["query"] == "'+1"
    assert rows[0]["count"] == "'@SUM(A1)" and rows[1]["count"] == "'-2"


def test_csv_by_the_book_quotes_breaks_and_records_the_run(streamed, tmp_path):
    result, _ = streamed
    nasty = replace(result, model="m\rx;=1+1", samples=[
        replace(result.samples[0], fact="a\nb", noise=0.10000000149011612),
        replace(result.samples[1], fact="\0=cmd", temperature=2.0)], complete=False)
    path = write_csv(nasty, tmp_path / "nasty.csv")
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == 3  # header and two rows: the CR and LF inside cells are quoted, not rows
    for line in raw.split(b"\r\n")[1:-1]:
        assert line.startswith(b'"') and line.endswith(b'"')  # every field quoted
    assert b'"m\rx;=1+1"' in raw  # the separator-injection cell stays inside its quotes
    rows = list(csv.DictReader(open(path, encoding="utf-8", newline="")))
    assert rows[0]["model"] == "m\rx;=1+1" and rows[0]["count"] == "a\nb"
    assert rows[1]["count"] == "'\u2400=cmd"  # a leading NUL is neutralised and made visible
    assert rows[0]["noise"] == "0.1" and rows[1]["temperature"] == "2"
    assert rows[0]["seed"] == str(result.seed) and rows[0]["schedule"] == result.schedule != ""
    assert rows[0]["candidates"] == str(result.candidates) and rows[0]["complete"] == "False"
    assert rows[0]["candidates_done"] == str(nasty.candidates_done)
    assert rows[0]["precision"] in ("fp32", "bf16")


def test_csv_unwritable_path_leaves_nothing(streamed, tmp_path):
    result, _ = streamed
    with pytest.raises(OutputError, match="does not exist"):
        write_csv(result, tmp_path / "missing" / "x.csv")
    with pytest.raises(OutputError, match="is a folder"):
        write_csv(result, tmp_path)
    # /proc exists but takes no new files, even for root: the write itself fails
    with pytest.raises(OutputError, match="cannot write /proc/ivs-samples.csv"):
        write_csv(result, "/proc/ivs-samples.csv")
    assert not list(tmp_path.glob("*.tmp"))


def test_decoder_that_does_not_match_the_model(tmp_path):
    import json

    folder = make_model_folder(tmp_path / "m", "counting", decoder_steps=0)
    config = json.loads((folder / "inversionview.json").read_text())
    config["decoder"]["config"]["d_act"] = 32
    (folder / "inversionview.json").write_text(json.dumps(config))
    with pytest.raises(StoreError, match="the decoder does not match the model"):
        load_inverter(str(folder))


def test_cached_generation_agrees_with_the_teacher_forced_forward_pass(inv):
    """Near-greedy sampling with the key/value cache must pick, at every step, the argmax that the
    full forward pass (no cache) computes for the same prefix."""
    task, d = inv.probed.task, inv.decoder
    z = torch.randn(16, d.cfg.d_act, generator=torch.Generator().manual_seed(1))
    site_ids = torch.arange(16) % d.cfg.n_sites
    out = generate(d, z, site_ids, torch.full((16,), 1e-6), task.bos_id, task.eos_id, task.pad_id)
    with torch.inference_mode():
        logits = d(out[:, :-1], z, site_ids)  # (16, T-1, V)
    greedy = logits.argmax(-1)
    generated = out[:, 1:] != task.pad_id
    assert generated.sum() > 16
    assert torch.equal(greedy[generated], out[:, 1:][generated])


def test_colouring_can_be_left_out(inv):
    r = run_query(inv, QUERY, "x0.mid", ":", Opts(candidates=32, chunk_size=32, colour=False))
    assert r.samples and all(s.prob_diff == [] for s in r.samples)


def _hooked_query(inv, monkeypatch, stage: str, cancel_in_chunk: int | None):
    """A 192-candidate query (chunks of 64) with one scoring stage counted per call; with
    cancel_in_chunk, that stage's first call in that chunk sets the cancel event. Returns the
    result, the chunks streamed, and the stage's calls per chunk (after the cancel: under 'after')."""
    import engine.query.run as run
    import engine.query.score as score

    # small groups, so a chunk's scoring is many steps: a cancel must stop between any two of them
    monkeypatch.setattr(score, "RERUN_ROWS", 8)
    monkeypatch.setattr(run, "COLOUR_ROWS", 8)
    monkeypatch.setattr(score, "SAMPLE_ROWS", 8)
    cancel, chunks, calls = threading.Event(), [], Counter()

    def counted(original):
        def hook(*args, **kwargs):
            if cancel.is_set():
                calls["after"] += 1
            else:
                calls[len(chunks)] += 1
                if len(chunks) == cancel_in_chunk:
                    cancel.set()  # this call finishes; the stage must not start another
            return original(*args, **kwargs)
        return hook

    if stage == "rerun":  # each re-run group reads the site once
        reader = inv.fast_reader or inv.reader
        monkeypatch.setattr(reader, "read", counted(reader.read))
    elif stage == "colour":  # each colouring group is one teacher-forced pass
        monkeypatch.setattr(run, "_prob_diff", counted(run._prob_diff))
    else:  # the per-sample loop: one agreement per distinct sample
        monkeypatch.setattr(score, "agreement", counted(score.agreement))
    opts = Opts(candidates=192, chunk_size=64, first_chunk_size=64, seed=5)
    result = run_query(inv, QUERY, "x0.mid", ":", opts, on_chunk=chunks.append, cancel=cancel)
    return result, chunks, calls


@pytest.mark.parametrize("stage", ["rerun", "colour", "samples"])
def test_cancel_inside_scoring_stops_at_the_next_group(inv, monkeypatch, stage):
    """Set half-way through scoring the second chunk, the cancel stops the query before the
    stage's next group (the per-sample loop: within SAMPLE_ROWS samples); the partial result
    holds the first chunk whole and nothing of the second."""
    full, _, uncancelled = _hooked_query(inv, monkeypatch, stage, None)
    assert full.complete and uncancelled[1] > 1  # the second chunk's scoring has several groups to stop between

    result, chunks, calls = _hooked_query(inv, monkeypatch, stage, 1)
    assert not result.complete
    assert calls[1] == 1  # the call that cancelled
    if stage == "samples":
        assert calls["after"] < 8  # the rest of the current 8 samples at most
    else:
        assert calls["after"] == 0  # no later group ran after the cancel
    assert len(chunks) == 1
    assert result.candidates_done == 64 == sum(s.multiplicity for s in result.samples)
    assert sorted(s.text for s in result.samples) == sorted(s.text for s in chunks[0].samples)
    assert [s.rank for s in result.samples] == list(range(1, len(result.samples) + 1))
