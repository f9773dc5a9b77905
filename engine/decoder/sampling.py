"""Sampling whole inputs from the decoder, fast: a preallocated key/value cache, and finished
sequences leave the batch (counting inputs average about 21 of 33 tokens), a fifth of the batch
at a time so that the caches are not copied every step."""
from __future__ import annotations

import threading

import torch

from engine.decoder.model import ConditionalDecoder
from engine.errors import Cancelled

COMPACT_AT = 0.8  # finished rows are dropped once they are a fifth of the batch


DRAW_LOGITS = 1 << 22  # logits drawn from together (64 rows at GPT-2's vocabulary): they stay in cache


def draw(logits: torch.Tensor, generator: torch.Generator | None = None,
         temperature: torch.Tensor | None = None) -> torch.Tensor:
    """(b,) one token per row from softmax(logits / temperature), logits (b, V), by inverting
    the cumulative sum: one uniform number per row and a binary search.

    torch.multinomial draws an exponential per vocabulary entry (about 5% of a counting query);
    the cumulative sum is computed in place in one fp32 copy of the logits."""
    w = logits.float()  # (b, V) a copy when logits are bf16; written over below
    if w.data_ptr() == logits.data_ptr():
        w = w.clone()
    w -= w.amax(dim=-1, keepdim=True)
    if temperature is not None:
        w *= 1.0 / temperature
    w.exp_()
    torch.cumsum(w, dim=-1, out=w)  # the unnormalised cdf
    u = torch.rand(w.shape[0], 1, generator=generator, device=w.device) * w[:, -1:]  # (b, 1)
    return torch.searchsorted(w, u, right=True)[:, 0].clamp_max(w.shape[1] - 1)  # first index whose cdf exceeds u


def draw_next(decoder: ConditionalDecoder, x: torch.Tensor, temperature: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """(b,) the next token of every row from the decoder's final states x (b, d).

    At a text model's vocabulary (50,259) the logits of a whole batch are 150 MB per step: made
    at once, every step pays fresh pages and several passes through memory (about 0.54 s per step
    for 768 rows, here). Made some 64 rows at a time (DRAW_LOGITS), each block's logits, softmax and cdf stay
    in cache: 0.13 s, about the cost of the vocabulary product alone (benchmarks/text_query_speed.py).
    A small vocabulary (the synthetic tasks) is drawn in one block."""
    out = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    block = max(1, DRAW_LOGITS // decoder.cfg.d_vocab)
    for start in range(0, x.shape[0], block):
        rows = slice(start, start + block)
        out[rows] = draw(decoder.logits_of(x[rows]), generator, temperature[rows])  # (r, V) logits, then (r,)
    return out


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
    caches = []  # per layer (keys, values), each (b, H, 1 + n_ctx, dh): the prefix slot, then the tokens
    for pk, pv in decoder.prefixes(z, site_ids):
        k = pk.new_empty(B, pk.shape[1], 1 + cfg.n_ctx, pk.shape[3])
        v = torch.empty_like(k)
        k[:, :, :1], v[:, :, :1] = pk, pv
        caches.append((k, v))
    rows = torch.arange(B, device=device)  # the row of `out` each batch row writes to
    running = torch.ones(B, dtype=torch.bool, device=device)  # batch rows still generating
    cur = out[:, 0]
    temp = temperature.to(device=device, dtype=torch.float32).clamp_min(1e-4)[:, None]  # (b, 1)
    for t in range(cfg.n_ctx - 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("sampling cancelled")
        x = decoder.embed(cur[:, None], t)  # (b, 1, d)
        for blk, (k, v) in zip(decoder.blocks, caches):
            x = blk.step(x, k, v, filled=1 + t)  # the new token sees the prefix and every earlier token
        tok = draw_next(decoder, x[:, -1], temp, generator)  # (b,)
        out[rows[running], t + 1] = tok[running]
        running &= (tok != eos_id) & (tok != pad_id)
        n_running = int(running.sum())
        if n_running == 0:
            break
        if n_running <= COMPACT_AT * len(running):
            # drop finished rows, but not every step: each drop copies the caches
            keep = running.nonzero()[:, 0]
            rows, tok, temp, running = rows[keep], tok[keep], temp[keep], running[keep]
            caches = [(k[keep], v[keep]) for k, v in caches]
        cur = tok
    return out


