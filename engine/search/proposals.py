"""Where a search move's new token comes from.

The synthetic tasks propose from their own alphabet (every token that is not BOS, EOS or PAD),
uniformly. A text model proposes from its own next-token distribution at the edited place: one
unembedding row per prefix (the final residual before the place, through the final norm and W_U),
so a name is proposed where the model expects a name. `Proposer.tokens` gives `k` distinct
candidates per edit, tried in order until one passes the grammar filter.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.flow.readout import Unembed
from engine.probed.sites import get_site, read_rows

DRAWS = 8  # candidate tokens per edit: the first that passes the grammar filter and is new is used


class AlphabetProposer:
    """Uniform draws from the task's non-special tokens."""

    def __init__(self, alphabet: list[int], rng: np.random.Generator):
        self.alphabet = np.asarray(alphabet)
        self.rng = rng

    def tokens(self, prefixes: list[list[int]], current: list[int | None], k: int = DRAWS,
               hidden=None) -> list[list[int]]:
        out = []
        for now in current:
            pool = self.alphabet[self.alphabet != now] if now is not None else self.alphabet
            out.append(self.rng.choice(pool, size=min(k, len(pool)), replace=False).tolist())
        return out


TOP_TOKENS = 64  # a prefix's proposals: its TOP_TOKENS most likely next tokens
CACHED_PREFIXES = 50_000  # chains near the query share most prefixes: each is run through the model once


class LanguageModelProposer:
    """Draws from the probed model's next-token distribution after each prefix, cut to its
    TOP_TOKENS most likely tokens. A prefix's distribution is computed once and kept: the chains
    edit a few places of inputs near the query, so the same prefixes come back step after step
    (one full-depth pass per new prefix, not per proposal)."""

    def __init__(self, probed, special: set[int], rng: np.random.Generator):
        self.bridge = probed.bridge
        self.task = probed.task
        self.rng = rng
        self.top = get_site(probed.config, f"x{probed.config.n_layers - 1}.post")
        self.unembed = Unembed.of(self.bridge, fast=False)
        self.special = sorted(i for i in special if 0 <= i < self.unembed.d_vocab)
        self.cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}  # prefix -> (ids, probs)

    def known(self, prefix: list[int]) -> bool:
        """Whether the prefix's distribution is cached (its hidden state is then not needed)."""
        return tuple(prefix) in self.cache

    def tokens(self, prefixes: list[list[int]], current: list[int | None], k: int = DRAWS,
               hidden: list[torch.Tensor | None] | None = None) -> list[list[int]]:
        """k distinct draws per prefix (its tokens before the edited place), without the token
        `current` that the place holds now. hidden[i], where given: the prefix's last residual
        stream at its last token (d,), from the chain's cached state (engine/search/prefix.py),
        which saves the forward pass. Every prefix's distribution is cached, however computed."""
        hidden = hidden or [None] * len(prefixes)
        entries = {tuple(p): self.cache[tuple(p)] for p in prefixes if tuple(p) in self.cache}
        given = [i for i, h in enumerate(hidden) if h is not None and tuple(prefixes[i]) not in entries]
        if given:
            entries.update(zip((tuple(prefixes[i]) for i in given),
                               self._top_tokens(torch.stack([hidden[i] for i in given]))))
        missing = list(dict.fromkeys(tuple(p) for p in prefixes if tuple(p) not in entries))
        if missing:
            entries.update(zip(missing, self._fill(missing)))
        if len(self.cache) + len(entries) > CACHED_PREFIXES:
            self.cache.clear()  # a long search: start afresh rather than grow without end
        self.cache.update(entries)
        out = []
        for prefix, now in zip(prefixes, current):
            ids, probs = entries[tuple(prefix)]
            keep = ids != now
            ids, probs = ids[keep], probs[keep]
            out.append(self.rng.choice(ids, size=min(k, len(ids)), replace=False, p=probs / probs.sum()).tolist())
        return out

    @torch.inference_mode()
    def _fill(self, prefixes: list[tuple[int, ...]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each prefix's (ids, probabilities), run through the model (prefixes with no cached state)."""
        lengths = [len(p) for p in prefixes]
        width = max(lengths)
        device = self.unembed.w_u.device
        grid = torch.tensor([list(p) + [self.task.filler_id] * (width - len(p)) for p in prefixes], device=device)
        last = torch.tensor(lengths, device=device) - 1  # (B,) the place each row predicts from
        rows = torch.zeros(len(prefixes), dtype=torch.long, device=device)
        h = read_rows(self.bridge, grid, [self.top], rows, last)  # (B, d) the last residual stream
        return self._top_tokens(h)

    @torch.inference_mode()
    def _top_tokens(self, h: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids, probabilities) of the TOP_TOKENS most likely next tokens after last residual
        streams h (B, d): through the final norm and W_U for these rows only ((B, V), not (B, T, V))."""
        u, h = self.unembed, h.float()
        logits = u.norm.centred_weighted(h) @ u.w_u / u.norm.scale(h)[:, None] + u.beta  # (B, V)
        logits[:, self.special] = float("-inf")  # never write BOS/EOS/PAD
        top = logits.topk(min(TOP_TOKENS, logits.shape[1] - len(self.special)), dim=1)
        probs = torch.softmax(top.values, dim=1).cpu().numpy().astype(np.float64)
        return list(zip(top.indices.cpu().numpy(), probs))
