"""Re-running a search's proposals from their parent's cached prefix.

Every search move changes an input from one place on (`Edit.at`): the tokens before it, and so
every activation there, are the parent's (the model is causal). A chain's state therefore keeps
its keys and values per layer, its raw per-position distances and, for a text model, its last
residual stream per position; a proposal computes only its positions from the edit on, attending
to the parent's cached keys and values for the positions before it. The last residual stream
gives the next step's language-model proposals as one unembedding row per chain (no second pass).

The computation is SiteReader's (engine/probed/reader.py: GPT-2's design, fused weights) with a
ragged prefix per row; a test checks its distances against the plain re-run. It holds about
2 x layers x tokens x d_model floats per live state, so it is used for inputs of at most
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

MAX_TOKENS = 256


@dataclass
class PrefixState:
    """What a re-run input leaves for its children."""

    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer run: keys, values (H, T, dh)
    distance: torch.Tensor  # (T,) raw distance to the query at every position (special ones included)
    top: torch.Tensor | None  # (T, d) the last residual stream (text models: the LM proposals read it)


class PrefixRunner:
    """Runs batches of (parent state or None, tokens, first changed place) to new states."""

    def __init__(self, reader: SiteReader, site: Site, z_q: torch.Tensor, metric: str, to_top: bool):
        self.r, self.site, self.z_q, self.metric = reader, site, z_q, metric
        self.last = len(reader.layers) - 1 if to_top else site.layer  # the last layer run

    @torch.inference_mode()
    def run(self, parents: list[PrefixState | None], inputs: list[list[int]], starts: list[int]) -> list[PrefixState]:
        r = self.r
        B, H, dh = len(inputs), r.n_heads, r.d_head
        d = r.w_e.shape[1]
        device, dtype = r.w_e.device, r.w_e.dtype
        starts = [0 if p is None else j for p, j in zip(parents, starts)]
        lengths = [len(t) for t in inputs]
        news = [n - j for n, j in zip(lengths, starts)]
        W, T = max(news), max(lengths)
        grid = torch.tensor([t[j:] + [0] * (W - n) for t, j, n in zip(inputs, starts, news)], device=device)
        start = torch.tensor(starts, device=device)
        at = (start[:, None] + torch.arange(W, device=device)[None, :]).clamp(max=r.w_pos.shape[0] - 1)  # (B, W)
        valid = torch.arange(W, device=device)[None, :] < torch.tensor(news, device=device)[:, None]  # (B, W)
        rows = torch.arange(B, device=device)[:, None].expand(B, W)[valid]  # (n,) scatter targets
        cols = at[valid]
        keys = torch.arange(T, device=device)
        allowed = (keys[None, None, :] <= at[:, :, None]) & (keys[None, None, :] < torch.tensor(
            lengths, device=device)[:, None, None])  # (B, W, T) causal, inside the input
        bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, float("-inf"))

        # The per-token products run on the new positions packed (n, d): padding every row to the
        # widest edit would cost as much as re-running whole. Only attention sees rows (B, W).
        x = r.w_e[grid[valid]] + r.w_pos[at[valid]]  # (n, d) residual stream of the new positions
        n = x.shape[0]
        kv_out, acts = [], None
        for L, layer in enumerate(r.layers[:self.last + 1]):
            if L == self.site.layer and self.site.kind == "resid_pre":
                acts = x
            qkv = x.new_zeros(B, W, 3 * H * dh)
            qkv[valid] = F.linear(F.layer_norm(x, (d,), *layer.ln1, eps=r.eps), layer.w_qkv, layer.b_qkv)
            q, k, v = qkv.view(B, W, 3, H, dh).permute(2, 0, 3, 1, 4)  # each (B, H, W, dh)
            k_all = torch.zeros(B, H, T, dh, dtype=dtype, device=device)
            v_all = torch.zeros(B, H, T, dh, dtype=dtype, device=device)
            for b, parent in enumerate(parents):  # the parent's keys and values before the edit
                if parent is not None and starts[b]:
                    k_all[b, :, :starts[b]] = parent.kv[L][0][:, :starts[b]]
                    v_all[b, :, :starts[b]] = parent.kv[L][1][:, :starts[b]]
            k_all.permute(0, 2, 1, 3)[rows, cols] = k.permute(0, 2, 1, 3)[valid]
            v_all.permute(0, 2, 1, 3)[rows, cols] = v.permute(0, 2, 1, 3)[valid]
            kv_out.append((k_all, v_all))
            z = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=bias[:, None], scale=1.0 / math.sqrt(dh))
            z = z.transpose(1, 2)[valid]  # (n, H, dh)
            if L == self.site.layer and self.site.kind == "head":
                acts = F.linear(z[:, self.site.head], layer.w_o[:, self.site.head * dh:(self.site.head + 1) * dh])
            attn_out = F.linear(z.reshape(n, H * dh), layer.w_o, layer.b_o)
            if L == self.site.layer and self.site.kind == "attn_out":
                acts = attn_out
            x = x + attn_out
            if L == self.site.layer and self.site.kind == "resid_mid":
                acts = x
            hidden = r.act(F.linear(F.layer_norm(x, (d,), *layer.ln2, eps=r.eps), layer.w_in, layer.b_in))
            mlp_out = F.linear(hidden, layer.w_out, layer.b_out)
            if L == self.site.layer and self.site.kind == "mlp_out":
                acts = mlp_out
            x = x + mlp_out
            if L == self.site.layer and self.site.kind == "resid_post":
                acts = x
        padded = x.new_zeros(B, W, d)
        padded[valid] = acts
        acts = padded
        if self.last == len(r.layers) - 1:
            padded = x.new_zeros(B, W, d)
            padded[valid] = x
            x = padded
        dist = position_distances(self.z_q, acts.float(), valid, self.metric)  # (B, W), inf past the end
        out = []
        for b, parent in enumerate(parents):
            j, n, m = starts[b], news[b], lengths[b]
            before = parent.distance[:j] if parent is not None else dist.new_empty(0)
            top = None
            if self.last == len(r.layers) - 1:
                top = torch.cat([parent.top[:j] if parent is not None else x.new_empty(0, d), x[b, :n]])
            out.append(PrefixState([(kk[b, :, :m].clone(), vv[b, :, :m].clone()) for kk, vv in kv_out],
                                   torch.cat([before, dist[b, :n]]), top))
        return out
