"""In-training checks sized to the model (#31 item 6): a check tests a bounded number of sites,
in turn from one check to the next, says where it stands after every site, and its time counts
in a time budget. Budgets here are in steps, or in seconds of a fake clock: never wall time."""
import math

import pytest

import engine.decoder.evaluate as evaluate
from engine.decoder.train import (
    DecoderTrainConfig,
    QualityPoint,
    check_order,
    latest_rates,
    site_probabilities,
    train_decoder,
)
from engine.probed.model import PAPER_CONFIGS, build_probed
from engine.probed.sites import paper_sites
from tests.engine.helpers import make_model_folder, run_cli

SMALL = dict(batch_size=16, warmup=2, d_model=32, n_layers=1, n_heads=2, check_queries=4)


@pytest.fixture(scope="module")
def addition():
    probed = build_probed(PAPER_CONFIGS["addition"], seed=0)
    return probed, [s.short for s in paper_sites(probed.config)]


def test_a_check_tests_at_most_check_sites_in_turn_and_reports_each_site(addition, tmp_path):
    probed, names = addition  # 13 sites
    cfg = DecoderTrainConfig(minutes=0, steps=6, check_every_steps=2, check_sites=5, **SMALL)
    seen = []
    _, result = train_decoder(probed, cfg, tmp_path / "c.safetensors", resume=False, on_progress=seen.append)
    assert [q.step for q in result.quality] == [0, 2, 4, 6]
    assert all(len(q.rates) == 5 and q.of_sites == 13 for q in result.quality)
    # in turn: sites 0-4, 5-9, 10-12 and 0-1, 2-6; every site tested over the run
    assert list(result.quality[0].rates) == names[:5] and list(result.quality[1].rates) == names[5:10]
    assert set(result.quality[2].rates) == set(names[10:] + names[:2])
    assert set().union(*(q.rates for q in result.quality)) == set(names)
    # progress inside each check: its start (0 sites), then after every site; its point as soon as
    # it ends (a step of a large model takes minutes), all before the first step
    checks = [p.check for p in seen if p.check is not None]
    assert [c.done for c in checks] == [0, 1, 2, 3, 4, 5] * 4
    assert all(c.planned == 5 and c.of_sites == 13 and c.queries == 4 and c.limit is None for c in checks)
    assert all(p.check is not None and p.step == 0 for p in seen[:6])
    assert seen[6].quality is result.quality[0] and seen[6].step == 0 and seen[6].check is None
    assert seen[7].step == 1 and seen[7].quality is None and seen[7].check is None
    assert [p.quality for p in seen if p.quality is not None] == result.quality  # each point once
    assert math.isnan(seen[0].loss) and math.isnan(seen[6].loss)  # no loss before the first step


def test_a_resumed_run_goes_on_with_the_next_sites(addition, tmp_path):
    probed, names = addition
    cfg = DecoderTrainConfig(minutes=0, steps=2, check_every_steps=2, check_sites=4, **SMALL)
    ckpt = tmp_path / "c.safetensors"
    _, first = train_decoder(probed, cfg, ckpt, resume=False)
    longer = DecoderTrainConfig(**{**cfg.__dict__, "steps": 4})
    _, again = train_decoder(probed, longer, ckpt, resume=True)
    assert [list(q.rates) for q in again.quality] == [names[0:4], names[4:8], names[8:12]]
    assert check_order(13, again.quality, 4) == [12, 0, 1, 2]


def test_focus_takes_each_sites_latest_rate_and_the_average_for_untested_ones(addition):
    _, names = addition
    early = QualityPoint(0, 0.0, 0, {"x1.post": 0.1}, 1.0, 13)
    late = QualityPoint(10, 5.0, 0, {n: 0.9 for n in names[:6] if n != "x1.post"}, 1.0, 13)
    merged = latest_rates([early, late])
    assert merged.rates["x1.post"] == 0.1 and merged.step == 10 and len(merged.rates) == 7
    p = site_probabilities(len(names), 0.5, merged, names)
    weak, tested = names.index("x1.post"), 0
    untested = next(i for i, n in enumerate(names) if n not in merged.rates)
    assert p.sum() == pytest.approx(1.0) and p[weak] > 2 * p[tested]
    # an untested site counts as the average (0.79) of the tested ones: not as a rate of 0
    assert p[tested] < p[untested] < p[weak]
    assert p[untested] < 1.5 * p[tested]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def test_check_time_counts_in_a_time_budget_and_a_check_ends_at_its_share(addition, tmp_path, monkeypatch):
    """One minute of a fake clock: each site of a check costs 2 s, each step 1 s. A check may take
    15% of the 60 s between checks (9 s): it ends after 5 sites (10 s). The first check (10 s), the
    steps, and the closing check (10 s, kept free at the end) make the minute."""
    probed, names = addition
    clock = FakeClock()
    monkeypatch.setattr("engine.decoder.train.time", clock)
    monkeypatch.setattr("engine.train.loop.time", clock)
    sample_once = evaluate._sample_once

    def slow_site(*args, **kwargs):
        clock.now += 2.0
        return sample_once(*args, **kwargs)

    monkeypatch.setattr(evaluate, "_sample_once", slow_site)

    def on_progress(p):
        closing = p.quality is not None and p.quality.step == p.step  # the update after the closing check
        if p.check is None and not closing:
            clock.now += 1.0  # a step

    start = clock.now
    cfg = DecoderTrainConfig(minutes=1, check_every_s=60, **SMALL)
    _, result = train_decoder(probed, cfg, tmp_path / "c.safetensors", resume=False, on_progress=on_progress)
    assert [len(q.rates) for q in result.quality] == [5, 5]
    assert [q.took for q in result.quality] == [10.0, 10.0]
    assert result.quality[0].seconds == 0.0 and result.quality[1].seconds == 50.0
    assert result.steps == 40  # 10 s of check, 40 s of steps, 10 s of closing check
    assert clock.now - start == 60.0 and result.seconds == 60.0


def test_cli_says_what_the_checks_cost_and_shows_progress_inside_them(tmp_path):
    folder = make_model_folder(tmp_path / "small", "addition")
    r = run_cli("train-decoder", "addition", "--model", str(folder), "--steps", "3", "--d-model", "32",
                "--layers", "1", "--heads", "2", "--batch-size", "16")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "quality checks: at the start and every 1 steps, all 13 sites x 48 queries" in out
    assert "checking the decoder at step 0: 13 of 13 sites x 48 queries" in out
    assert "1/13   7.7%" in out and "sites of 13, 48 queries each" in out
    assert out.index("checking the decoder at step 0") < out.index("step 1 pairs")
    assert "Traceback" not in out
