"""The prob-diff colouring on demand: p(token | z_q) - p(token | z_BOS) for chosen samples of a result.

`run_query(..., colour=True)` colours every distinct sample before the result is complete; the
app runs its queries with colour=False (0.25 s instead of 0.65 s for a counting query, 2 cores)
and asks for the colours of the rows on screen first, then the rest in the background
(app/results/colouring.py). The values are the ones run_query gives: the same z_q and z_BOS
(the query re-read at the site), the same decoder rows (a sample's model ids as the decoder
wrote them: a text sample gets the decoder's own EOS back), the same `token_prob_diff`.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from engine.errors import Cancelled, StoreError
from engine.probed.sites import Site, get_site
from engine.query.run import Inverter, check_cancel, token_prob_diff, wants_colour
from engine.query.types import QueryResult
from engine.store.folders import no_decoder_message

COLOUR_PART = 64  # samples per streamed part of `colour_in_parts` (about 20 ms of a counting decoder)


@dataclass
class ColourConditions:
    """What every sample of one result is coloured with: computed once per result."""

    site: Site
    site_id: int  # the site's index in the decoder's site embedding
    z_q: torch.Tensor  # (1, d) the query activation at the site and query position
    z_bos: torch.Tensor  # (1, d) the same site read at the query's BOS position


def colour_conditions(inv: Inverter, result: QueryResult) -> ColourConditions:
    """z_q and z_BOS of a result's query, read as run_query reads them (the fp32 reader)."""
    if not inv.has_decoder:
        raise StoreError(no_decoder_message(inv.entry))
    task = inv.probed.task
    site = get_site(inv.probed.config, result.site_short)
    site_id = inv.site_index(site)
    query = torch.tensor([list(result.query_tokens)], device=inv.probed.device)
    acts = inv.reader.read(query, site)[0]  # (T, d)
    return ColourConditions(site, site_id, acts[result.query_position][None], acts[task.bos_position][None])


def decoder_rows(task, samples: Sequence[Sequence[int]], n_ctx: int, device=None) -> torch.Tensor:
    """(N, L) the decoder rows that produced these samples (model ids, BOS first), padded with the
    decoder's PAD. A synthetic sample already ends with its EOS (the decoder shares the model's
    ids); a text sample stops before the decoder's own EOS, which is put back where there is room
    (the decoder is causal, so the colours of a sample's own tokens do not depend on it)."""
    rows = []
    for tokens in samples:
        row = list(tokens)
        if task.decoder_eos_id != task.eos_id and len(row) < n_ctx:
            row.append(task.decoder_eos_id)
        rows.append(row)
    width = max((len(r) for r in rows), default=1)
    grid = torch.full((len(rows), width), task.decoder_pad_id, dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        grid[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return grid


def colour_samples(inv: Inverter, result: QueryResult, sample_indices: Sequence[int],
                   cancel: threading.Event | None = None,
                   conditions: ColourConditions | None = None) -> dict[int, list[float]]:
    """{index: prob-diff per token} for result.samples[index] (a finished or partial result of this
    inverter), the values run_query(..., colour=True) gives them; 0 at BOS. Every index asked for
    is coloured, whatever its distance (see `wants_colour` for run_query's rule). Raises Cancelled,
    between groups of samples, when `cancel` is set; `conditions` (colour_conditions) spares
    re-reading the query when a result is coloured in parts."""
    indices = list(dict.fromkeys(int(i) for i in sample_indices))
    if not indices:
        return {}
    check_cancel(cancel)
    cond = conditions or colour_conditions(inv, result)
    task, decoder = inv.probed.task, inv.decoder
    tokens = [result.samples[i].tokens for i in indices]
    grid = decoder_rows(task, tokens, decoder.cfg.n_ctx, device=cond.z_q.device)
    diffs = token_prob_diff(decoder, grid, cond.z_q, cond.z_bos, cond.site_id, task.decoder_pad_id,
                            cancel).cpu().tolist()
    return {i: d[:len(t)] for i, t, d in zip(indices, tokens, diffs)}


def colour_in_parts(inv: Inverter, result: QueryResult, order: Sequence[int],
                    on_part: Callable[[dict[int, list[float]], int, int], None],
                    cancel: threading.Event | None = None, part: int = COLOUR_PART,
                    near_only: bool = True) -> int:
    """Colours result.samples[i] for i in `order`, `part` samples at a time, calling
    on_part({index: values}, done, total) after each part. With near_only, a sample that
    run_query would leave plain (`wants_colour`) comes back as [] without a decoder pass.
    Returns the samples done; a cancel stops it quietly between groups."""
    order = list(dict.fromkeys(int(i) for i in order))
    done, total = 0, len(order)
    try:
        cond = colour_conditions(inv, result) if order else None
        for start in range(0, total, part):
            chunk = order[start:start + part]
            wanted = [i for i in chunk
                      if not near_only or wants_colour(inv, result.samples[i].distance, result.epsilon)]
            values = colour_samples(inv, result, wanted, cancel, cond)
            done += len(chunk)
            on_part({i: values.get(i, []) for i in chunk}, done, total)
            check_cancel(cancel)
    except Cancelled:
        pass
    return done
