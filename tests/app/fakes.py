"""A small fake engine with run_query's signature, for tests of pure UI behaviour.

It streams realistic QueryChunks (distinct samples with multiplicities, per-position distances,
prob_diff, task facts) without torch, and honours cancel within one simulated step. Models are
real model folders (inversionview.json + an empty decoder file) in the test's user data dir, so the
app's model picker sees them through engine.store as it would real ones.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from engine.errors import StoreError
from engine.probed.model import PAPER_CONFIGS
from engine.probed.sites import get_site, paper_sites
from engine.query.types import (
    QueryAccumulator,
    QueryChunk,
    QueryOptions,
    QueryResult,
    SampleResult,
    agreement,
    result_header,
)
from engine.store.folders import find_model, user_models_dir
from engine.tasks import get_task


def make_fake_models(names=(("fake-counting", "counting"), ("fake-addition", "addition"))) -> list[Path]:
    """Model folders in the user models dir (INVERSIONVIEW_DATA_DIR), each with a decoder file."""
    folders = []
    for name, task in names:
        folder = user_models_dir() / name
        folder.mkdir(parents=True, exist_ok=True)
        config = {"format": 1, "name": name, "task": task, "probed": PAPER_CONFIGS[task].to_dict(),
                  "decoder": {"d_model": 128, "n_layers": 2}}
        (folder / "inversionview.json").write_text(json.dumps(config), encoding="utf-8")
        (folder / "decoder.safetensors").write_bytes(b"")
        folders.append(folder)
    return folders


class FakeEngine:
    """Knobs a test turns: how slow loading and each chunk are, and failures to inject."""

    def __init__(self, chunk_delay: float = 0.0, load_delay: float = 0.0):
        self.chunk_delay = chunk_delay
        self.load_delay = load_delay
        self.fail_run: BaseException | None = None  # raised by the next run_query
        self.fail_load: BaseException | None = None  # raised by the next load_inverter
        self.loads = 0
        self.runs = 0
        self.options_seen: list[QueryOptions] = []  # every run_query's options
        self.colour_delay = 0.0  # seconds per part of a colour job
        self.colour_jobs: list[list[int]] = []  # each colour job's order, as asked
        self.colour_cancelled = 0  # colour jobs that stopped at a cancel
        self.fail_colour: BaseException | None = None  # raised by the next colour job
        self.colour_gate = threading.Event()  # cleared: a colour job waits (cancellable) before its first part
        self.colour_gate.set()

    def backend(self):
        from engine.server.backend import EngineBackend

        return EngineBackend(load_inverter=self.load_inverter, run_query=self.run_query,
                             jobs={"map": self.run_map, "colour": self.run_colour})

    def run_colour(self, inv, params, report, cancel):
        """engine/query/colour.py's colour_in_parts, with fake_prob_diff's values: parts of
        params["part"] (64) samples, each after colour_delay seconds, stopped by a cancel; while
        colour_gate is cleared it waits before the first part (a test holds the job there)."""
        result, order = params["result"], list(dict.fromkeys(params["order"]))
        self.colour_jobs.append(order)
        if self.fail_colour is not None:
            err, self.fail_colour = self.fail_colour, None
            raise err
        part, done = params.get("part", 64), 0
        while not self.colour_gate.wait(0.005):
            if cancel.is_set():
                break
        for start in range(0, len(order), part):
            if cancel.is_set() or (self.colour_delay and cancel.wait(self.colour_delay)):
                self.colour_cancelled += 1
                break
            chunk = order[start:start + part]
            done += len(chunk)
            report({i: fake_prob_diff(result.samples[i].tokens) for i in chunk}, done, len(order))
        return done

    def run_map(self, inv, params, report, cancel):
        """The information map through the fake run_query, node by node (engine/explain/sweep.py's rows)."""
        from engine.explain.sweep import InformationMap, reading_of

        task = inv.probed.task
        ids = task.parse_query(params["text"])
        given = params.get("options", {})
        options = QueryOptions(candidates=given.get("candidates", 256), chunk_size=256,
                               epsilon=given.get("epsilon", 0.1))
        positions = [i for i, label in enumerate(task.position_labels(ids)) if label not in ("B", "E", "P")]
        nodes = [(s.short, p) for s in inv.sites for p in positions]
        out = InformationMap(inv.entry.name, task.detokenize(ids), ids, options)
        for done, (site, position) in enumerate(nodes, start=1):
            if cancel.is_set():
                out.complete = False
                break
            result = self.run_query(inv, params["text"], site, position, options)
            out.rows.append(reading_of(result))
            report((out.rows[-1], result), done, len(nodes))
        return out

    # ---- load_inverter ----------------------------------------------------------------
    def load_inverter(self, entry_or_name, device=None):
        entry = find_model(entry_or_name) if isinstance(entry_or_name, str) else entry_or_name
        if self.load_delay:
            time.sleep(self.load_delay)  # the engine thread, not the test, waits here
        if self.fail_load is not None:
            err, self.fail_load = self.fail_load, None
            raise err
        if not entry.has_decoder:
            raise StoreError(f"{entry.path / 'decoder.safetensors'}: file not found (this model has no decoder yet)")
        self.loads += 1
        task = get_task(entry.task)
        return SimpleNamespace(entry=entry, probed=SimpleNamespace(task=task, config=entry.probed),
                               sites=paper_sites(entry.probed), precision="fp32")

    # ---- run_query --------------------------------------------------------------------
    def run_query(self, inv, text, site, position, options=QueryOptions(), on_chunk=None,
                  cancel: threading.Event | None = None) -> QueryResult:
        self.runs += 1
        self.options_seen.append(options)
        if self.fail_run is not None:
            err, self.fail_run = self.fail_run, None
            raise err
        options.check()
        task = inv.probed.task
        tokens = task.parse_query(text)
        labels = task.position_labels(tokens)
        pos = task.resolve_position(tokens, position)
        s = get_site(inv.entry.probed, site)
        header = result_header(inv.entry.name, task, tokens, pos, s, options, inv.precision)
        acc = QueryAccumulator(header)
        rng = np.random.default_rng(options.seed)
        start = time.monotonic()
        done, first = 0, 0.0
        per_entry = math.ceil(options.candidates / len(options.schedule))
        while done < options.candidates:
            if cancel is not None and cancel.is_set():
                break
            if self.chunk_delay and cancel is not None and cancel.wait(self.chunk_delay):
                break
            n = min(options.chunk_size, options.candidates - done)
            temperature, noise = options.schedule[min(done // per_entry, len(options.schedule) - 1)]
            samples = _fake_samples(task, tokens, labels[pos], n, temperature, noise, rng, header.features)
            if not options.colour:  # as the real engine: plain samples (the draws above stay the same)
                for sample in samples:
                    sample.prob_diff = []
            done += n
            chunk = QueryChunk(samples=samples, done=done, total=options.candidates,
                               elapsed=time.monotonic() - start)
            first = first or chunk.elapsed
            acc.add(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
        result = acc.result(complete=done >= options.candidates)
        result.seconds, result.first_chunk_seconds = time.monotonic() - start, first
        return result


def fake_prob_diff(tokens: list[int]) -> list[float]:
    """The fake colour job's prob-diffs: a fixed function of the tokens, 0 at BOS, within +-0.5."""
    return [0.0] + [((t * 7 + i * 13) % 21 - 10) / 20 for i, t in enumerate(tokens[1:], start=1)]


def _mutate(task, tokens: list[int], temperature: float, rng) -> list[int]:
    """The query with a few non-special tokens resampled from its own tokens (hotter: more)."""
    out = list(tokens)
    inner = [i for i in range(1, len(out) - 1)]
    k = int(rng.poisson(temperature * 1.5))
    for i in rng.choice(inner, size=min(k, len(inner)), replace=False):
        out[i] = out[int(rng.choice(inner))]
    return out


def _fake_samples(task, query: list[int], want_label: str, n: int, temperature: float, noise: float, rng,
                  features=()):
    """n candidates merged into distinct samples: near copies of the query plus random inputs."""
    by_text: dict[str, SampleResult] = {}
    random_grid = task.random_inputs(n, rng)
    for k in range(n):
        near = rng.random() < 0.8 / temperature
        ids = _mutate(task, query, temperature, rng) if near else [int(t) for t in random_grid[k]]
        text = task.detokenize(ids)
        ids = task.vocab.encode(text)
        if text in by_text:
            by_text[text].multiplicity += 1
            continue
        labels = task.position_labels(ids)
        verdict = task.check(text)
        differ = sum(a != b for a, b in zip(ids, query)) + abs(len(ids) - len(query))
        base = 0.6 * differ / len(query) + rng.uniform(0, 0.04) + noise * 0.2
        compared = [i for i, lab in enumerate(labels) if lab not in ("B", "E", "P")]
        cp = labels.index(want_label) if want_label in labels else int(rng.choice(compared))
        dists = [float("nan") if lab in ("B", "E", "P") else base + 0.04 * abs(i - cp) + rng.uniform(0, 0.02)
                 for i, lab in enumerate(labels)]
        dists[cp] = base
        by_text[text] = SampleResult(
            text=text, tokens=ids, labels=labels, multiplicity=1, distance=base, compared_position=cp,
            position_distances=dists, temperature=temperature, noise=noise, fact=task.fact(ids),
            well_formed=verdict.well_formed, pieces=task.vocab.token_strings(ids),
            agrees=agreement(task, list(features), ids, cp, query),
            prob_diff=[float(rng.uniform(-0.6, 0.6)) if a == b else float(rng.uniform(-0.3, 0.1))
                       for a, b in zip(ids, query + [0] * len(ids))])
    return list(by_text.values())
