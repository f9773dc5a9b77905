"""Transformer blocks on ragged rows: each row computes only its new positions, attending to keys
and values cached for the positions before them (engine/search/prefix.py).

The per-token products (layer norms, W_QKV, W_O, the MLP) run on the new positions of all rows
packed (n, d): padding every row to the widest edit would cost as much as re-running whole. Only
attention sees rows (B, W), padded. The weights are SiteReader's (engine/probed/reader.py: GPT-2's
design, fused); `shared_reader` makes one whose weights are views of the bridge's own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.probed.model import ProbedModel
from engine.probed.reader import SiteReader, _Layer


@dataclass
class Layout:
    """Where each row's new positions sit, shared by every block of one run."""

    valid: torch.Tensor  # (B, W) bool: a row's w-th new position exists
    rows: torch.Tensor  # (n,) each packed position's row
    cols: torch.Tensor  # (n,) each packed position's place in its input
    bias: torch.Tensor  # (B, 1, W, T) 0 where a new position may attend (causal), -inf elsewhere
    sizes: list[int]  # per row, its number of new positions (to split packed outputs)

    @classmethod
    def of(cls, starts: list[int], ends: list[int], n_ctx: int, device, dtype) -> Layout:
        """Rows whose new positions are places [starts[b], ends[b])."""
        B, sizes = len(starts), [e - s for s, e in zip(starts, ends)]
        W, T = max(sizes), max(ends)
        steps = torch.arange(W, device=device)
        at = (torch.tensor(starts, device=device)[:, None] + steps[None, :]).clamp(max=n_ctx - 1)  # (B, W)
        valid = steps[None, :] < torch.tensor(sizes, device=device)[:, None]  # (B, W)
        # a padded position attends to place 0 at least (never a row of -inf: softmax would be NaN)
        allowed = torch.arange(T, device=device)[None, None, :] <= at[:, :, None]  # (B, W, T)
        bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(~allowed, float("-inf"))
        rows = torch.arange(B, device=device)[:, None].expand(B, W)[valid]
        return cls(valid, rows, at[valid], bias[:, None], sizes)

    def padded(self, packed: torch.Tensor) -> torch.Tensor:
        """(n, ...) -> (B, W, ...) with zeros where a row has no position."""
        out = packed.new_zeros(*self.valid.shape, *packed.shape[1:])
        out[self.valid] = packed
        return out


def attend(r: SiteReader, q: torch.Tensor, kv: torch.Tensor, lay: Layout, new_kv: torch.Tensor) -> torch.Tensor:
    """Attention of the new positions: q (n, h, dh) packed queries; kv (B, T, 2, h, dh) the rows'
    keys and values, the cached places filled (zeros elsewhere), into which new_kv (n, 2, h, dh) is
    written at the new positions' places. Returns z (n, h, dh)."""
    kv[lay.rows, lay.cols] = new_kv
    k, v = kv.unbind(2)  # each (B, T, h, dh)
    z = F.scaled_dot_product_attention(lay.padded(q).transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       attn_mask=lay.bias, scale=1.0 / math.sqrt(r.d_head))  # (B, h, W, dh)
    return z.transpose(1, 2)[lay.valid]


def block_attention(r: SiteReader, layer: _Layer, x: torch.Tensor, kv: torch.Tensor, lay: Layout) -> torch.Tensor:
    """Every head's z (n, H, dh) for the new positions' residual stream x (n, d); kv as `attend`'s."""
    n, d = x.shape
    qkv = F.linear(F.layer_norm(x, (d,), *layer.ln1, eps=r.eps), layer.w_qkv, layer.b_qkv)  # (n, 3 H dh)
    qkv = qkv.view(n, 3, r.n_heads, r.d_head)
    return attend(r, qkv[:, 0], kv, lay, qkv[:, 1:])


def mlp(r: SiteReader, layer: _Layer, x: torch.Tensor) -> torch.Tensor:
    """The MLP's output (n, d) for residual streams x (n, d)."""
    d = x.shape[1]
    return F.linear(r.act(F.linear(F.layer_norm(x, (d,), *layer.ln2, eps=r.eps), layer.w_in, layer.b_in)),
                    layer.w_out, layer.b_out)


def run_layers(r: SiteReader, first: int, x: torch.Tensor, kv: torch.Tensor, lay: Layout) -> torch.Tensor:
    """The residual stream (n, d) after layers first.. of new positions x (n, d) entering layer
    `first`; kv (B, layers, T, 2, H, dh), one slot per layer run, as `attend`'s."""
    n = x.shape[0]
    for i in range(kv.shape[1]):
        layer = r.layers[first + i]
        z = block_attention(r, layer, x, kv[:, i], lay)
        x = x + F.linear(z.reshape(n, -1), layer.w_o, layer.b_o)
        x = x + mlp(r, layer, x)
    return x


class SharedReader(SiteReader):
    """SiteReader's fp32 weights as views of the bridge's (SiteReader's share=True): at GPT-2 small
    a copy of every weight is about 0.5 GB (W_E alone 154 MB); here only the fused W_QKV is made
    (85 MB). F.linear reads a transposed view without copying it, at the same speed (measured:
    a (700, 768) x (768, 3072) product 58 ms either way, 2 threads under load)."""

    def __init__(self, probed: ProbedModel):
        super().__init__(probed, share=True)
