"""The decoder's training loss: next-token cross-entropy over whole inputs, padding ignored.

At a text model's vocabulary (GPT-2: 50,259 decoder ids) full logits are the whole cost: a batch
of 256 inputs x 40 tokens is 2 GB of fp32 logits, and as much again for their gradient. So the
loss first keeps only the positions that have a target (no padding), then computes the
vocabulary product in row chunks, each recomputed in the backward pass instead of stored
(torch.utils.checkpoint): memory holds one chunk's logits at a time. A small vocabulary (the
synthetic tasks: 15 or 40 ids) fits in one chunk and takes the plain path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from engine.decoder.model import ConditionalDecoder

MIN_PADDING_TO_SLICE = 0.15  # slice a batch only when padding is at least this share of it
CHUNK_LOGITS = 1 << 22  # logits per chunk (16 MB in fp32): rows per chunk = this / vocabulary


def _chunk_loss(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy((h @ weight.T).float(), targets, reduction="sum")


def chunked_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                          chunk_logits: int = CHUNK_LOGITS) -> torch.Tensor:
    """sum of -log softmax(h @ weight.T)[target] over rows: h (N, d), weight (V, d), targets (N,).

    The same value and gradients as F.cross_entropy on the full (N, V) logits."""
    rows = max(1, chunk_logits // weight.shape[0])
    if h.shape[0] <= rows:
        return _chunk_loss(h, weight, targets)
    total = h.new_zeros((), dtype=torch.float32)
    for start in range(0, h.shape[0], rows):
        part = slice(start, start + rows)
        total = total + checkpoint(_chunk_loss, h[part], weight, targets[part], use_reentrant=False)
    return total


def sequence_sums(decoder: ConditionalDecoder, batch, pad_id: int, buckets: int = 1) -> tuple[torch.Tensor, int]:
    """(summed next-token cross-entropy over the real tokens of the batch, how many there are).

    buckets > 1 sorts the batch by length and runs it in that many slices, each cut to its own
    longest input: the same sum with less padding computed.
    """
    lengths = (batch.tokens != pad_id).sum(dim=1)  # (B,)
    if float(lengths.float().mean()) > (1 - MIN_PADDING_TO_SLICE) * float(lengths.max()):
        buckets = 1  # little padding to save (addition): more, smaller products would cost more
    order = torch.argsort(lengths)
    total = torch.zeros((), device=batch.tokens.device)
    n_targets = 0
    weight = decoder.tok_emb.weight  # (V, d) tied embeddings
    for rows in order.tensor_split(max(1, min(buckets, len(order)))):
        if rows.numel() == 0:
            continue
        length = int(lengths[rows].max())  # drop all-padding columns
        tokens = batch.tokens[rows, :length]
        h = decoder.hidden(tokens[:, :-1], batch.z[rows], batch.site_ids[rows])  # (b, L-1, d)
        targets = tokens[:, 1:]
        real = targets != pad_id  # (b, L-1)
        total = total + chunked_cross_entropy(h[real], weight, targets[real])  # only positions with a target
        n_targets += int(real.sum())
    return total, n_targets


def sequence_loss(decoder: ConditionalDecoder, batch, pad_id: int, buckets: int = 1) -> torch.Tensor:
    """Mean next-token cross-entropy over the whole input (BOS..EOS), padding ignored."""
    total, n = sequence_sums(decoder, batch, pad_id, buckets)
    return total / max(n, 1)
