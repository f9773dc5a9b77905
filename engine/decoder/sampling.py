"""Sampling whole inputs from the decoder, fast: a key/value cache, and each sequence leaves the
batch as soon as it emits EOS (counting inputs average about 21 of 33 tokens)."""
from __future__ import annotations

import threading

import torch

from ..errors import Cancelled
from .model import ConditionalDecoder


@torch.inference_mode()
def generate(
    decoder: ConditionalDecoder,
    z: torch.Tensor,  # (B, d_act) conditions
    site_ids: torch.Tensor,  # (B,)
    temperature: torch.Tensor,  # (B,) plain temperature sampling, no top-k / top-p
    bos_id: int,
    eos_id: int,
    pad_id: int,
    generator: torch.Generator | None = None,
    cancel: threading.Event | None = None,
) -> torch.Tensor:
    """(B, n_ctx) token grids: BOS, sampled tokens up to and including EOS, then PAD.

    A sequence ends at EOS, or at a PAD the decoder emits (then it simply has no EOS); one that
    reaches n_ctx without either is returned as it is. Either way it is not well formed.
    Raises Cancelled if `cancel` is set (checked once per decoding step).
    """
    cfg = decoder.cfg
    B, device = z.shape[0], z.device
    out = torch.full((B, cfg.n_ctx), pad_id, dtype=torch.long, device=device)
    out[:, 0] = bos_id
    caches = [list(kv) for kv in decoder.prefixes(z, site_ids)]  # per layer [(b, H, S, dh)] * 2
    alive = torch.arange(B, device=device)  # rows of `out` still generating
    cur = out[:, 0]
    temp = temperature.to(device=device, dtype=torch.float32).clamp_min(1e-4)[:, None]  # (b, 1)
    for t in range(cfg.n_ctx - 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("sampling cancelled")
        x = decoder.embed(cur[:, None], t)  # (b, 1, d)
        for blk, cache in zip(decoder.blocks, caches):
            x, cache[0], cache[1] = blk(x, cache[0], cache[1], causal=False)  # one new token sees all
        logits = decoder.logits_of(x)[:, -1].float() / temp  # (b, V)
        tok = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]  # (b,)
        out[alive, t + 1] = tok
        keep = (tok != eos_id) & (tok != pad_id)
        if not bool(keep.all()):
            alive, tok, temp = alive[keep], tok[keep], temp[keep]
            caches = [[k[keep], v[keep]] for k, v in caches]
            if alive.numel() == 0:
                break
        cur = tok
    return out
