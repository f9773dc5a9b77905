"""Reading one site for many inputs without the bridge's hooks: InversionView's re-run.

A query re-runs about a thousand sampled inputs through the probed model. Through the
TransformerBridge every layer norm, linear map and attention pattern passes a hook point and a
wrapper: for 1,000 addition inputs 60 ms through the bridge, 42 ms here (one thread; counting,
whose products dominate, 81 ms against 76 ms). `SiteReader` copies the
weights once, in TransformerLens's W_Q/W_K/... form, and runs plain fused torch operations up to
the site. `sites.read_site` stays the reference: a test checks every site of both tasks
against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.probed.model import ProbedModel
from engine.probed.sites import Site, read_site
from engine.tasks.text import TEXT_TASK

ACTIVATIONS = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


@dataclass
class _Layer:
    ln1: tuple  # (weight (d,), bias (d,))
    w_qkv: torch.Tensor  # (3 * H * dh, d): queries, keys, values of every head, as one product
    b_qkv: torch.Tensor  # (3 * H * dh,)
    w_o: torch.Tensor  # (d, H * dh)
    b_o: torch.Tensor  # (d,)
    ln2: tuple
    w_in: torch.Tensor  # (d_mlp, d)
    b_in: torch.Tensor  # (d_mlp,)
    w_out: torch.Tensor  # (d, d_mlp)
    b_out: torch.Tensor  # (d,)


class SiteReader:
    """Activations of a site for a batch of inputs; same values as `sites.read_site`.

    dtype: the copy's precision. A bfloat16 copy re-runs a text model's samples about 2x faster
    than fp32 on this project's AMX CPU (and 4x faster than the bridge at GPT-2 small); its
    distances are then off by a few thousandths, so the query re-checks the samples near epsilon
    in fp32 (engine/query/run.py)."""

    def __init__(self, probed: ProbedModel, dtype: torch.dtype = torch.float32, share: bool = False):
        """share: fp32 weights as views of the bridge's where the layout allows (only the fused
        W_QKV is made: 85 MB at GPT-2 small instead of a 0.5 GB copy; F.linear reads a transposed
        view at the same speed); the caller must not change the bridge meanwhile."""
        cfg = probed.config
        if cfg.act_fn not in ACTIVATIONS:
            raise ValueError(f"no fast path for activation {cfg.act_fn!r}")
        bridge = probed.bridge
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_model // cfg.n_heads
        self.eps = float(bridge.cfg.eps)
        self.act = ACTIVATIONS[cfg.act_fn]
        own = (lambda t: t) if share else (lambda t: t.clone())
        with torch.no_grad():
            self.w_e = own(bridge.W_E.detach())  # (V, d)
            self.w_pos = own(bridge.W_pos.detach())  # (n_ctx, d)
            self.layers = [self._layer(block, share) for block in bridge.blocks]
        if dtype != torch.float32:
            self.w_e, self.w_pos = self.w_e.to(dtype), self.w_pos.to(dtype)
            self.layers = [_Layer(**{k: tuple(t.to(dtype) for t in v) if isinstance(v, tuple) else v.to(dtype)
                                     for k, v in vars(layer).items()}) for layer in self.layers]
        self.dtype = dtype

    @staticmethod
    def _layer(block, share: bool = False) -> _Layer:
        """One block's weights in F.linear's layout: copies, or (share) views where a view will do."""
        a, m = block.attn, block.mlp
        own = (lambda t: t) if share else (lambda t: t.clone())
        lay = (lambda t: t) if share else (lambda t: t.contiguous())  # a transposed view, or its copy

        def rows(w):  # (H, d, dh) -> (H * dh, d), the layout F.linear takes
            return w.detach().permute(0, 2, 1).reshape(-1, w.shape[1])

        return _Layer(
            ln1=(own(block.ln1.w.detach()), own(block.ln1.b.detach())),
            w_qkv=torch.cat([rows(a.W_Q), rows(a.W_K), rows(a.W_V)]).contiguous(),  # (3 H dh, d), one product
            b_qkv=torch.cat([a.b_Q.detach().reshape(-1), a.b_K.detach().reshape(-1), a.b_V.detach().reshape(-1)]),
            w_o=lay(a.W_O.detach().reshape(-1, a.W_O.shape[-1]).T),  # (d, H dh)
            b_o=own(a.b_O.detach()),
            ln2=(own(block.ln2.w.detach()), own(block.ln2.b.detach())),
            w_in=lay(m.W_in.detach().T), b_in=own(m.b_in.detach()),  # (d_mlp, d)
            w_out=lay(m.W_out.detach().T), b_out=own(m.b_out.detach()),  # (d, d_mlp)
        )

    def read(self, tokens: torch.Tensor, site: Site) -> torch.Tensor:
        """(B, T, d_model) fp32 activations of `site` for token grids (B, T); runs only up to the site."""
        return self._read(tokens, site).float()

    @torch.inference_mode()
    def _read(self, tokens: torch.Tensor, site: Site) -> torch.Tensor:
        B, T = tokens.shape
        H, dh = self.n_heads, self.d_head
        d = self.w_e.shape[1]
        x = self.w_e[tokens] + self.w_pos[:T]  # (B, T, d)
        for L, layer in enumerate(self.layers):
            if L == site.layer and site.kind == "resid_pre":
                return x
            h = F.layer_norm(x, (d,), *layer.ln1, eps=self.eps)
            qkv = F.linear(h, layer.w_qkv, layer.b_qkv).view(B, T, 3, H, dh)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, dh)
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(dh))  # (B, H, T, dh)
            if L == site.layer and site.kind == "head":
                w = layer.w_o[:, site.head * dh:(site.head + 1) * dh]  # (d, dh): W_O[head], transposed
                return F.linear(z[:, site.head], w)  # (B, T, d), no bias, as hook_z @ W_O[head]
            attn_out = F.linear(z.transpose(1, 2).reshape(B, T, H * dh), layer.w_o, layer.b_o)
            if L == site.layer and site.kind == "attn_out":
                return attn_out
            x = x + attn_out
            if L == site.layer and site.kind == "resid_mid":
                return x
            hidden = self.act(F.linear(F.layer_norm(x, (d,), *layer.ln2, eps=self.eps), layer.w_in, layer.b_in))
            mlp_out = F.linear(hidden, layer.w_out, layer.b_out)
            if L == site.layer and site.kind == "mlp_out":
                return mlp_out
            x = x + mlp_out
            if L == site.layer and site.kind == "resid_post":
                return x
        raise ValueError(f"site {site.short} is not in this {len(self.layers)}-layer model")


class BridgeReader:
    """The same reads through the bridge's hooks: for real models, whose weights are too large
    to copy a second time (GPT-2 small: 0.5 GB) and whose architectures (RMSNorm, rotary
    positions, grouped-query attention) the fused path does not implement."""

    def __init__(self, probed: ProbedModel):
        self.bridge = probed.bridge

    def read(self, tokens: torch.Tensor, site: Site) -> torch.Tensor:
        return read_site(self.bridge, tokens, site)  # (B, T, d_model), run up to the site's layer


def fused_fits(probed: ProbedModel) -> bool:
    """Whether the fused path computes this model: GPT-2's design (LayerNorm, learned positions,
    one key and value per head, a plain MLP), not RMSNorm, rotary positions or gated MLPs."""
    cfg = probed.bridge.cfg
    return (probed.config.act_fn in ACTIVATIONS
            and getattr(cfg, "positional_embedding_type", "standard") == "standard"
            and getattr(cfg, "normalization_type", "LN") in ("LN", "LNPre")
            and not getattr(cfg, "gated_mlp", False)
            and getattr(cfg, "n_key_value_heads", None) in (None, cfg.n_heads)
            and not getattr(cfg, "parallel_attn_mlp", False))


def reader_for(probed: ProbedModel) -> SiteReader | BridgeReader:
    """The fused reader for the small GPT-2-style models it implements, else the bridge (a text
    model's weights are too large to copy a second time in fp32)."""
    if probed.task.name == TEXT_TASK or not fused_fits(probed):
        return BridgeReader(probed)
    return SiteReader(probed)


def fast_reader_for(probed: ProbedModel) -> SiteReader | None:
    """A bfloat16 fused copy for re-running a GPT-2-style text model's samples (half the fp32
    copy's memory: 250 MB at GPT-2 small), or None where the fused path does not fit."""
    if probed.task.name != TEXT_TASK or not fused_fits(probed):
        return None
    return SiteReader(probed, torch.bfloat16)
