"""Re-running a search's proposals from their parent's cached prefix, only up to the site.

Every search move changes an input from one place on (`Edit.at`): the tokens before it, and so
every activation there, are the parent's (the model is causal). A chain's state therefore keeps
its keys and values per layer and its raw per-position distances; a proposal computes only its
positions from the edit on, attending to the parent's cached keys and values before it.

A proposal runs only the layers its site needs: the layers below the site's, then at the site's
layer no more than the site reads (a head site: that head's attention alone; attn and x.mid: the
attention without the MLP). At GPT-2 small and
a mid-layer head that is half the model. A text model's proposals draw their tokens from the
model's next-token distribution, which needs the last residual stream at the place before an
edit; the layers above the site run lazily for that (`tops`): once per chain state, for its
places up to the one asked, attending to the keys and values it inherited from its parent. Most
of those places are shared with the parent, and the proposer caches each prefix's distribution.

The computation is SiteReader's (engine/probed/reader.py: GPT-2's design, fused weights) on
ragged rows (engine/search/ragged.py); a test checks its distances against independent re-runs.
A state holds about 2 x layers x tokens x d_model floats, so it is used for inputs of at most
MAX_TOKENS tokens (longer ones re-run whole).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.probed.reader import SiteReader
from engine.probed.sites import Site
from engine.query.distance import position_distances
from engine.search.ragged import Layout, attend, block_attention, mlp, run_layers

MAX_TOKENS = 256


@dataclass
class PrefixState:
    """What a re-run input leaves for its children and its own proposals."""

    kv: torch.Tensor  # (split, T, 2, H, dh) keys and values of the layers run in full below the site
    distance: torch.Tensor  # (T,) raw distance to the query at every position (special ones included)
    head_kv: torch.Tensor | None = None  # (T, 2, h, dh) keys and values of the h heads a site reads
    mid: torch.Tensor | None = None  # (T, d) residual stream entering layer `split` (text models)
    upper: torch.Tensor | None = None  # (layers - split, u, 2, H, dh) the layers above, places < u only
    top: torch.Tensor | None = None  # (u, d) the last residual stream at places < u (text models)

    @property
    def known(self) -> int:
        """u: the places whose last residual stream is computed (a prefix of the input)."""
        return 0 if self.top is None else self.top.shape[0]


class PrefixRunner:
    """Runs batches of (parent state or None, tokens, first changed place) to new states; with
    to_top, also the last residual stream of states at given places (`tops`)."""

    def __init__(self, reader: SiteReader, site: Site, z_q: torch.Tensor, metric: str, to_top: bool):
        self.r, self.site, self.z_q, self.metric, self.to_top = reader, site, z_q, metric, to_top
        # layers every proposal runs in full: a site that reads its layer's attention, or the
        # residual before it, needs no more of that layer than the heads it reads
        self.split = site.layer if site.kind in ("head", "resid_pre", "attn_out", "resid_mid") else site.layer + 1
        if site.kind in ("head", "attn_out", "resid_mid"):  # the heads' rows of W_QKV (3 h dh, d)
            layer, H, dh = reader.layers[site.layer], reader.n_heads, reader.d_head
            heads = [site.head] if site.kind == "head" else list(range(H))
            pick = torch.cat([torch.arange(dh, device=layer.w_qkv.device) + part * H * dh + h * dh
                              for part in range(3) for h in heads])
            self.heads, self.head_w, self.head_b = len(heads), layer.w_qkv[pick], layer.b_qkv[pick]
        self._scratch: dict[str, torch.Tensor] = {}

    def scratch(self, key: str, *shape: int) -> torch.Tensor:
        """A tensor of `shape` in storage reused from step to step: a step's keys and values are
        tens of MB, and a fresh allocation that size is fresh pages from the system every time
        (the states copy out what they keep). Zeroed when allocated, it holds finite values ever
        after: where a row has no key (past its end), attention's -inf mask gives the stale key
        and value a weight of exactly 0, as it would a zero (0 x a finite value is 0)."""
        size = math.prod(shape)
        buf = self._scratch.get(key)
        if buf is None or buf.numel() < size:  # a quarter to spare: inputs grow a token at a time
            buf = self._scratch[key] = self.r.w_e.new_zeros(size + size // 4)
        return buf[:size].view(shape)

    @torch.inference_mode()
    def run(self, parents: list[PrefixState | None], inputs: list[list[int]], starts: list[int]) -> list[PrefixState]:
        """Each input's state: its places from starts[b] on computed up to the site (a row
        without a parent in full), the places before taken from its parent."""
        r, site = self.r, self.site
        H, dh = r.n_heads, r.d_head
        device, dtype = r.w_e.device, r.w_e.dtype
        starts = [0 if p is None else j for p, j in zip(parents, starts)]
        lengths = [len(t) for t in inputs]
        T = max(lengths)
        lay = Layout.of(starts, lengths, r.w_pos.shape[0], device, dtype)
        tokens = torch.tensor([t for row, j in zip(inputs, starts) for t in row[j:]], device=device)  # (n,)
        x = r.w_e[tokens] + r.w_pos[lay.cols]  # (n, d) residual stream of the new positions
        n, d = x.shape
        kv = self.scratch("kv", len(inputs), self.split, T, 2, H, dh)  # (B, split, T, 2, H, dh)
        for b, (parent, j) in enumerate(zip(parents, starts)):  # the parent's keys and values before the edit
            if j:
                kv[b, :, :j] = parent.kv[:, :j]
        acts = None
        for L in range(self.split):
            layer = r.layers[L]
            attn_out = F.linear(block_attention(r, layer, x, kv[:, L], lay).reshape(n, H * dh), layer.w_o, layer.b_o)
            x = x + attn_out
            mlp_out = mlp(r, layer, x)
            x = x + mlp_out
            if L == site.layer and site.kind in ("mlp_out", "resid_post"):
                acts = mlp_out if site.kind == "mlp_out" else x
        head_kv = None
        if site.kind == "resid_pre":
            acts = x
        elif site.layer == self.split:  # the site's heads alone, attending to their cached keys and values
            h, layer = self.heads, r.layers[site.layer]
            head_kv = self.scratch("head", len(inputs), T, 2, h, dh)  # (B, T, 2, h, dh)
            for b, (parent, j) in enumerate(zip(parents, starts)):
                if j:
                    head_kv[b, :j] = parent.head_kv[:j]
            qkv = F.linear(F.layer_norm(x, (d,), *layer.ln1, eps=r.eps), self.head_w, self.head_b).view(n, 3, h, dh)
            z = attend(r, qkv[:, 0], head_kv, lay, qkv[:, 1:])  # (n, h, dh)
            if site.kind == "head":  # hook_z @ W_O[head], without the bias (as SiteReader)
                acts = F.linear(z[:, 0], layer.w_o[:, site.head * dh:(site.head + 1) * dh])
            else:
                acts = F.linear(z.reshape(n, H * dh), layer.w_o, layer.b_o)
                acts = acts if site.kind == "attn_out" else x + acts
        dist = position_distances(self.z_q, lay.padded(acts), lay.valid, self.metric)  # (B, W), inf past the end
        mids = x.split(lay.sizes) if self.to_top else [None] * len(inputs)
        out = []
        for b, (parent, j, m) in enumerate(zip(parents, starts, lengths)):
            before = parent.distance[:j] if j else dist.new_empty(0)
            state = PrefixState(kv[b, :, :m].clone(), torch.cat([before, dist[b, :m - j]]),
                                None if head_kv is None else head_kv[b, :m].clone())
            if self.to_top:
                state.mid = torch.cat([parent.mid[:j], mids[b]]) if j else mids[b].clone()
                u = min(j, parent.known) if j else 0
                if u:  # the layers above, before the edit, are the parent's (views: nothing copied)
                    state.upper, state.top = parent.upper[:, :u], parent.top[:u]
            out.append(state)
        return out

    @torch.inference_mode()
    def tops(self, states: list[PrefixState], places: list[int]) -> list[torch.Tensor]:
        """The last residual stream (d,) of each state at its place (to_top only). The layers
        above the split run for the places not known yet: each state once, up to the furthest
        place asked of it."""
        if self.split == len(self.r.layers):  # the proposals run the whole model already
            return [s.mid[p] for s, p in zip(states, places)]
        furthest: dict[int, tuple[PrefixState, int]] = {}
        for s, p in zip(states, places):
            if p >= s.known:
                furthest[id(s)] = (s, max(p, furthest.get(id(s), (s, p))[1]))
        if furthest:
            self._extend([s for s, _ in furthest.values()], [p + 1 for _, p in furthest.values()])
        return [s.top[p] for s, p in zip(states, places)]

    def _extend(self, states: list[PrefixState], ends: list[int]) -> None:
        """Runs the layers above the split for places [known, end) of each state, in place."""
        r = self.r
        starts = [s.known for s in states]
        lay = Layout.of(starts, ends, r.w_pos.shape[0], r.w_e.device, r.w_e.dtype)
        kv = self.scratch("upper", len(states), len(r.layers) - self.split, max(ends), 2, r.n_heads, r.d_head)
        for b, (s, u) in enumerate(zip(states, starts)):  # (B, upper layers, T, 2, H, dh)
            if u:
                kv[b, :, :u] = s.upper
        x = torch.cat([s.mid[u:e] for s, u, e in zip(states, starts, ends)])  # (n, d) entering layer `split`
        x = run_layers(r, self.split, x, kv, lay)  # (n, d) the last residual stream
        for b, (s, new) in enumerate(zip(states, x.split(lay.sizes))):
            s.upper = kv[b, :, :ends[b]].clone()
            s.top = new.clone() if s.top is None else torch.cat([s.top, new])
