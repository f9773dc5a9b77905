"""The IOI circuit of a model that does IOI, found the way Wang et al. (2022) and the InversionView
paper did, on held-out prompts of the distribution (engine/tasks/ioi_prompts.py):

1. Direct logit attribution at END: each head's output at END, through the final norm frozen at
   the model's own scale there (engine/flow/readout.py FinalNorm), onto W_U[IO] - W_U[S]. The
   heads that write the IO name into the logits are the name movers; heads that write against
   it are the negative ones.
2. Attention: how much of each head's attention at END goes to IO, S1 and S2, and at S2 to IO
   and S1. In GPT-2 small a name mover attends from END to IO; a model may instead gather the IO
   name at S2 (the subject's duplicate) and move it from there.
3. Activation patching (engine/patching): the prompt with S2 replaced by the IO name (the
   subject's duplicate now points at the other name, and the answer flips) as the corrupted run;
   each head at END and at S2, and the residual stream at S2, patched alone; the share of the
   logit difference IO - S each carries, averaged over prompts.
4. InversionView at END (engine/query, engine/explain/summary.py): for the final residual stream,
   each name mover and the strongest S2-attending head, the share of in-epsilon candidates whose
   IO (and S) name equals the query's, averaged over held-out queries.

Works on any text model whose inputs follow the IOI prompts (the bundled ioi model, or a local
GPT-2 small opened with --prompts ioi). Plain data out: `IOICircuit`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from engine.errors import Cancelled
from engine.flow.readout import FinalNorm
from engine.probed.sites import hooked_pass
from engine.tasks.base import TaskInputError
from engine.tasks.ioi_prompts import held_out_prompts

# attention read at the two places the circuit runs through: (from, to) position labels
ATTENTION = (("END", "IO"), ("END", "S1"), ("END", "S2"), ("S2", "IO"), ("S2", "S1"))


@dataclass
class PromptReading:
    """One prompt's figures: per head (L, H) arrays."""

    logit_diff: float  # IO - S at END
    dla: np.ndarray  # (L, H) each head's direct effect on IO - S at END
    on_io: np.ndarray  # (L, H) its direct effect on the IO logit, less its mean effect on every name's
    on_s: np.ndarray  # (L, H) the same for the S logit
    attention: dict  # "END>IO" ... -> (L, H) attention between those positions (ATTENTION)


@dataclass
class IOICircuit:
    prompts: int
    accuracy: float  # IO the top prediction at END
    logit_diff: float  # mean IO - S
    dla: np.ndarray  # (L, H) mean direct logit attribution
    on_io: np.ndarray  # (L, H) mean direct effect on the IO logit (relative to all names)
    on_s: np.ndarray  # (L, H) the same on the S logit: a head that suppresses S is negative here
    attention: dict  # "END>IO" ... -> (L, H) mean attention between those positions
    patch_end: np.ndarray | None = None  # (L, H) mean share of IO - S carried by each head at END
    patch_s2: np.ndarray | None = None  # (L, H) the same at S2
    patch_resid_s2: list[float] = field(default_factory=list)  # x{L}.post at S2, per layer
    patched_prompts: int = 0
    readings: list = field(default_factory=list)  # SiteReading per InversionView site at END

    def name_movers(self, threshold: float = 0.1) -> list[str]:
        """Heads whose direct effect is at least `threshold` of the largest, strongest first."""
        return _ranked(self.dla, threshold)

    def negative_heads(self, threshold: float = 0.1) -> list[str]:
        return _ranked(-self.dla, threshold)

    def copier(self) -> str:
        """The head below the last layer that attends most from END to IO (it brings the names to END)."""
        att = self.attention["END>IO"][:-1]
        layer, head = np.unravel_index(int(att.argmax()), att.shape)
        return f"a{layer}.{head}"


@dataclass
class SiteReading:
    site: str
    position: str  # END or S2
    queries: int
    in_epsilon: float  # mean share of candidates within epsilon
    io_share: float  # mean share of in-epsilon candidates whose IO is the query's (queries with any)
    s_share: float
    io_base: float  # the same share among all candidates
    s_base: float
    answered: int  # queries with at least one candidate within epsilon
    top: dict = field(default_factory=dict)  # feature -> how many queries had it as the top shared feature
    same_label: bool = False  # compared only at the query position's label, not at every position


def _ranked(values: np.ndarray, threshold: float) -> list[str]:
    top = values.max()
    if top <= 0:
        return []
    order = np.argsort(-values, axis=None)
    out = []
    for flat in order:
        layer, head = np.unravel_index(int(flat), values.shape)
        if values[layer, head] < threshold * top:
            break
        out.append(f"a{layer}.{head}")
    return out


def held_out(task, n: int, seed: int = 0):
    return held_out_prompts(task.data, task.held_out, n, seed)


def read_prompt(probed, prompt) -> tuple[PromptReading, bool]:
    """DLA and attention at END of one prompt (its answer included, as the decoder writes it),
    and whether the model's top prediction at END is the IO name."""
    task, bridge = probed.task, probed.bridge
    ids = task.encode(prompt.text)
    pos = task.ioi_positions(ids)
    if set(pos) != {"S1", "IO", "S2", "END"}:
        raise TaskInputError(f"cannot place S1, IO, S2 and END in {prompt.text!r} with this tokenizer")
    end, io, s = pos["END"], ids[pos["END"] + 1], ids[pos["S1"]]
    cache: dict = {}
    n_layers = probed.config.n_layers

    def keep(name):
        def hook(x, hook):
            cache[name] = x.detach()
            return x
        return hook

    hooks = [(f"blocks.{L}.attn.hook_z", keep(f"z{L}")) for L in range(n_layers)]
    hooks += [(f"blocks.{L}.attn.hook_pattern", keep(f"p{L}")) for L in range(n_layers)]
    hooks += [(f"blocks.{n_layers - 1}.hook_resid_post", keep("final"))]
    with hooked_pass(bridge), torch.inference_mode():
        logits = bridge.run_with_hooks(torch.tensor([ids], device=probed.device), fwd_hooks=hooks)  # (1, T, V)
        norm = FinalNorm.of(bridge)
        w_u = bridge.W_U.detach().float()  # (d, V)
        names = name_ids(task)
        scale = norm.scale(cache["final"][0, end].float())  # ()
        dla = np.zeros((n_layers, probed.config.n_heads))
        on_io, on_s = np.zeros_like(dla), np.zeros_like(dla)
        attention = {f"{a}>{b}": np.zeros_like(dla) for a, b in ATTENTION}
        for L in range(n_layers):
            w_o = bridge.blocks[L].attn.W_O.detach().float()  # (H, dh, d)
            z = cache[f"z{L}"][0, end].float()  # (H, dh)
            out = torch.einsum("hk,hkd->hd", z, w_o)  # (H, d) each head's result at END
            logit = norm.centred_weighted(out) @ w_u[:, names] / scale  # (H, names) direct effect
            logit = logit - logit.mean(dim=1, keepdim=True)  # against the names' mean: what it picks
            on_io[L] = logit[:, names.index(io)].cpu().numpy()
            on_s[L] = logit[:, names.index(s)].cpu().numpy()
            dla[L] = on_io[L] - on_s[L]
            pattern = cache[f"p{L}"][0].float()  # (H, T query, T key)
            for a, b in ATTENTION:
                attention[f"{a}>{b}"][L] = pattern[:, pos[a], pos[b]].cpu().numpy()
        row = logits[0, end].float()
    return PromptReading(float(row[io] - row[s]), dla, on_io, on_s, attention), int(row.argmax()) == io


@lru_cache(maxsize=8)
def name_ids(task) -> list[int]:
    """The token id of each name as it stands in a prompt (after a space: one token each)."""
    return [task.vocab.encode(" " + name)[-1] for name in task.data.names]


def s2_flipped(prompt) -> str:
    """The prompt with S2 replaced by the IO name and the answer by S: the duplicate now names
    the other person, so the model should answer S (Wang et al.'s corruption of S2)."""
    (s0, s1), (a0, a1), text = prompt.spans["S2"], prompt.spans["ANSWER"], prompt.text
    return text[:s0] + prompt.io + text[s1:a0] + prompt.s + text[a1:]


def study(probed, prompts: int = 200, patched: int = 50, seed: int = 0,
          on_progress: Callable[[str, int, int], None] | None = None,
          cancel: threading.Event | None = None) -> IOICircuit:
    """Steps 1-3 over held-out prompts (step 4 is `inversion_readings`, which needs a decoder)."""
    from engine.patching.nodes import Node
    from engine.patching.run import patch_nodes
    from engine.patching.setup import make_setup

    task = probed.task
    if not hasattr(task, "ioi_positions"):
        raise TaskInputError("this model does not follow the IOI prompts: open it with --prompts ioi")
    cfg = probed.config
    readings, right = [], 0
    chosen = held_out(task, prompts, seed)
    for i, prompt in enumerate(chosen):
        _check(cancel)
        reading, ok = read_prompt(probed, prompt)
        readings.append(reading)
        right += ok
        if on_progress:
            on_progress("attribution", i + 1, len(chosen))
    out = IOICircuit(len(readings), right / len(readings), float(np.mean([r.logit_diff for r in readings])),
                     np.mean([r.dla for r in readings], axis=0), np.mean([r.on_io for r in readings], axis=0),
                     np.mean([r.on_s for r in readings], axis=0),
                     {key: np.mean([r.attention[key] for r in readings], axis=0) for key in readings[0].attention})
    end_share = np.zeros((cfg.n_layers, cfg.n_heads))
    s2_share = np.zeros_like(end_share)
    resid = np.zeros(cfg.n_layers)
    done = 0
    for i, prompt in enumerate(chosen[:patched]):
        _check(cancel)
        clean = task.encode(prompt.text)
        corrupt = task.tokenize(s2_flipped(prompt))
        if len(corrupt) != len(clean):
            continue  # a name of another token length: positions would not align
        pos = task.ioi_positions(clean)
        setup = make_setup(task, clean, corrupt, position=pos["END"])
        nodes = [Node(f"a{L}.{H}", at) for at in (pos["END"], pos["S2"])
                 for L in range(cfg.n_layers) for H in range(cfg.n_heads)]
        nodes += [Node(f"x{L}.post", pos["S2"]) for L in range(cfg.n_layers)]
        report = patch_nodes(probed, setup, nodes)
        shares = [e.share if e.share is not None else 0.0 for e in report.effects]
        k = cfg.n_layers * cfg.n_heads
        end_share += np.array(shares[:k]).reshape(cfg.n_layers, cfg.n_heads)
        s2_share += np.array(shares[k:2 * k]).reshape(cfg.n_layers, cfg.n_heads)
        resid += np.array(shares[2 * k:])
        done += 1
        if on_progress:
            on_progress("patching", i + 1, patched)
    if done:
        out.patch_end, out.patch_s2 = end_share / done, s2_share / done
        out.patch_resid_s2 = list(resid / done)
        out.patched_prompts = done
    return out


def inversion_readings(inv, circuit: IOICircuit, queries: int = 20, candidates: int = 256, seed: int = 0,
                       sites: list[tuple[str, str]] | None = None, same_label: bool = False,
                       on_progress: Callable[[str, int, int], None] | None = None,
                       cancel: threading.Event | None = None) -> list[SiteReading]:
    """InversionView at END (and S2) of held-out prompts: what the samples within epsilon share.
    sites: (site, position label) pairs; default the final residual stream and the name movers
    at END, the head that brings the names to END, and the residual stream at S2 that the name
    movers read."""
    from engine.explain.summary import summarize
    from engine.query.run import run_query
    from engine.query.types import default_options

    task = inv.probed.task
    last = inv.probed.config.n_layers - 1
    if sites is None:
        movers = circuit.name_movers()[:3]
        sites = [(f"x{last}.post", "END"), *[(m, "END") for m in movers], (circuit.copier(), "END"),
                 (f"x{last - 1}.post", "S2")]
    trained = {s.short for s in inv.sites}
    sites = [(s, p) for s, p in sites if s in trained]
    options = default_options(task, candidates=candidates, seed=seed, colour=False, same_label=same_label)
    prompts = held_out(task, queries, seed + 1)
    out = []
    for k, (site, where) in enumerate(sites):
        rows, tops = [], {}
        for prompt in prompts:
            _check(cancel)
            result = run_query(inv, prompt.text, site, where, options, cancel=cancel)
            s = summarize(result)
            by = {f.name: f for f in s.features}
            rows.append((s.in_epsilon / max(s.candidates, 1), s.in_epsilon,
                         by["IO"].share, by["S"].share, by["IO"].base_rate, by["S"].base_rate))
            top = s.top()
            name = f"{top.name}" if top is not None else "(nothing)"
            tops[name] = tops.get(name, 0) + 1
        arr = np.array(rows)  # (queries, 6)
        answered = arr[:, 1] > 0
        # pooled over queries: the in-epsilon shares weighted by each query's in-epsilon candidates (a
        # query with one close candidate must not count as much as one with two hundred)
        weight = arr[:, 1]
        io_in, s_in = ((arr[:, 2:4] * weight[:, None]).sum(axis=0) / weight.sum()) if weight.sum() else \
            (float("nan"), float("nan"))
        out.append(SiteReading(site, where, len(prompts), float(arr[:, 0].mean()), float(io_in), float(s_in),
                               float(arr[:, 4].mean()), float(arr[:, 5].mean()), int(answered.sum()), tops,
                               same_label))
        if on_progress:
            on_progress("inversion", k + 1, len(sites))
    return out


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled
