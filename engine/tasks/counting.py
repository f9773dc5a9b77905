"""Character counting (docs/design.md §3): how often does the query letter occur?

`B` + a shuffled string of 3 distinct lowercase letters, each 1-9 times, + `|` + query letter +
`:` + its count + `E`, padded with `P` to 33 tokens. Token ids are the paper's.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

from engine.probed.config import ProbedConfig
from engine.tasks.base import AgreementProbe, DataSplit, Task, Verdict
from engine.text import CharTokenizer

LETTERS = "abcdefghijklmnopqrstuvwxyz"
# ids: a-z = 0-25, 1-9 = 26-34, | = 35, : = 36, B = 37, E = 38, P = 39
VOCAB = CharTokenizer(LETTERS + "123456789" + "|:BEP", specials="BEP")
N_CTX = 33
MAX_LETTERS = 27  # 3 letters x 9
COUNT_TRIPLES_PER_LETTER_TRIPLE = 200


class CountingTask(Task):
    name = "counting"
    vocab = VOCAB
    n_ctx = N_CTX
    bos_id = VOCAB.id_of("B")
    eos_id = VOCAB.id_of("E")
    pad_id = VOCAB.id_of("P")
    bar_id = VOCAB.id_of("|")
    colon_id = VOCAB.id_of(":")
    fact_name = "count"
    fact_header = "Count"
    # the paper's sizes and decoder sites, the schedule our bundled model began with (its CARD.md)
    probed_config = ProbedConfig("counting", n_layers=2, n_heads=1, d_model=64, d_mlp=256, n_ctx=33, d_vocab=40)
    paper_sites = ("x0.pre", "a0.0", "x0.mid", "m0", "x0.post", "a1.0", "x1.mid", "m1", "x1.post")
    train_schedule = {"steps": 12_000, "batch_size": 256, "lr": 2e-3, "warmup": 500}
    score_name = "accuracy (the count after ':')"
    paper_result = "99.53% test accuracy (batch 128, lr 5e-4, 914,100 steps)"
    default_site = "x1.post"
    default_position_label = ":"

    def agreement_probe(self) -> AgreementProbe:
        # the paper's headline reading: x1.post at ':' holds the count of the query letter
        return AgreementProbe("x1.post", lambda tokens: (tokens == self.colon_id).argmax(axis=1),
                              "x1.post at ':'", "the query's count")

    def answer_position(self, ids) -> int:
        """':' predicts the count (the only token the model is trained on)."""
        ids = [int(i) for i in ids]
        return ids.index(self.colon_id) if self.colon_id in ids else super().answer_position(ids)

    def format_hint(self) -> str:
        return ("a counting input is 3 distinct lowercase letters, each 1-9 times, then '|', "
                "one of those letters, ':' and its count, e.g. Baiaigiaaggi|g:3")

    def examples(self) -> list[str]:
        return ["Baiaigiaaggi|g:3", "Bvvzccvczvvvzvcvc|v:8", "Bxxqxqqmqx|m:1", "Bkkkkkkkkkrrssr|s:2"]

    def check(self, text: str) -> Verdict:
        def bad(reason: str) -> Verdict:
            return Verdict(False, False, reason)

        if not (text.startswith("B") and text.endswith("E")):
            return bad("it must start with B and end with E")
        body = text[1:-1]
        if body.count("|") != 1:
            return bad("it needs exactly one '|'")
        letters, tail = body.split("|")
        if len(tail) != 3 or tail[1] != ":":
            return bad("after '|' come the query letter, ':' and one count digit")
        query, count = tail[0], tail[2]
        if not letters or any(c not in LETTERS for c in letters):
            return bad("before '|' there must be lowercase letters only")
        distinct = sorted(set(letters))
        if len(distinct) != 3:
            return bad(f"it needs exactly 3 distinct letters before '|', found {len(distinct)}")
        too_many = [c for c in distinct if letters.count(c) > 9]
        if too_many:
            return bad(f"each letter may occur at most 9 times ({too_many[0]!r} occurs {letters.count(too_many[0])})")
        if query not in distinct:
            return bad(f"the query letter must be one of {''.join(distinct)}")
        if count not in "123456789":
            return bad("the count must be a digit 1-9")
        return Verdict(True, letters.count(query) == int(count), "")

    def position_labels(self, ids) -> list[str]:
        labels = [VOCAB.chars[int(i)] for i in ids]  # letters, B, E and P label themselves
        if "|" in labels:
            bar = labels.index("|")
            # the query letter, ':' and the count, unless the sample has a B, E or P there
            for j, label in zip(range(bar + 1, bar + 4), "Q:N"):
                if j < len(labels) and labels[j] not in ("B", "E", "P"):
                    labels[j] = label
        return labels

    def fact(self, ids) -> str:
        text = self.detokenize(ids)
        bar = text.find("|")
        if bar < 0 or bar + 1 >= len(text):
            return "?"
        return str(text[1:bar].count(text[bar + 1]))

    def features(self, ids, position: int, query_ids=None) -> dict[str, str | None]:
        """The count of the query letter, the query letter, the set of letters, their number."""
        text = self.detokenize(ids)
        letters, bar, tail = text[1:].partition("|")
        letters = letters if letters and all(c in LETTERS for c in letters) else None
        query = tail[0] if bar and tail and tail[0] in LETTERS else None
        return {
            "count": str(letters.count(query)) if letters and query else None,
            "query letter": query,
            "letters": "".join(sorted(set(letters))) if letters else None,
            "length": str(len(letters)) if letters else None,
            **super().features(ids, position),
        }

    # ---- data ------------------------------------------------------------------------
    def split(self, seed: int = 0) -> DataSplit:
        return _counting_split(seed)

    def random_inputs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        triples = rng.choice(26, size=(n, 3), replace=True)
        # redraw rows with repeated letters (rare) until all are distinct
        while True:
            dup = (triples[:, 0] == triples[:, 1]) | (triples[:, 0] == triples[:, 2]) | (triples[:, 1] == triples[:, 2])
            if not dup.any():
                break
            triples[dup] = rng.choice(26, size=(int(dup.sum()), 3))
        counts = rng.integers(1, 10, size=(n, 3))
        query = rng.integers(0, 3, size=n)
        return _build_grid(triples, counts, query, rng)

    def loss_mask(self, tokens: np.ndarray) -> np.ndarray:
        return tokens == self.colon_id  # the count follows ':'

    def decoder_positions(self, tokens: np.ndarray) -> np.ndarray:
        # the query letter, ':' and the count: the positions after '|' (docs/design.md §2)
        after_bar = np.cumsum(tokens == self.bar_id, axis=1) - (tokens == self.bar_id) > 0
        return after_bar & ~self.special_mask(tokens)


def _build_grid(triples: np.ndarray, counts: np.ndarray, query: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 33) token grids from letter triples (N,3), counts (N,3) in 1..9 and query slot (N,)."""
    n = len(triples)
    slot = np.arange(MAX_LETTERS)[None, :]  # (1, 27)
    c1 = counts[:, :1]
    c12 = c1 + counts[:, 1:2]
    total = c12 + counts[:, 2:3]  # (N, 1)
    which = np.where(slot < c1, 0, np.where(slot < c12, 1, 2))  # (N, 27) letter slot of each entry
    letters = np.take_along_axis(triples, which, axis=1)  # (N, 27)
    keys = rng.random((n, MAX_LETTERS), dtype=np.float32)
    keys[slot >= total] = 2.0  # unused slots sort last
    letters = np.take_along_axis(letters, np.argsort(keys, axis=1), axis=1)

    grid = np.full((n, N_CTX), VOCAB.id_of("P"), dtype=np.int64)
    grid[:, 0] = VOCAB.id_of("B")
    used = slot < total
    grid[:, 1:1 + MAX_LETTERS][used] = letters[used]
    rows = np.arange(n)
    end = total[:, 0] + 1  # index of '|'
    grid[rows, end] = VOCAB.id_of("|")
    grid[rows, end + 1] = triples[rows, query]
    grid[rows, end + 2] = VOCAB.id_of(":")
    grid[rows, end + 3] = VOCAB.id_of("1") + counts[rows, query] - 1
    grid[rows, end + 4] = VOCAB.id_of("E")
    return grid


@lru_cache(maxsize=2)
def _counting_split(seed: int) -> DataSplit:
    """All 1.56M strings: 2,600 letter triples x 200 count triples x 3 query letters."""
    rng = np.random.default_rng(seed)
    triples = np.array(list(combinations(range(26), 3)), dtype=np.int64)  # (2600, 3)
    n_tri = len(triples)
    pick = np.argsort(rng.random((n_tri, 729)), axis=1)[:, :COUNT_TRIPLES_PER_LETTER_TRIPLE]  # (2600, 200)
    counts = np.stack([pick // 81, (pick // 9) % 9, pick % 9], axis=-1) + 1  # (2600, 200, 3)
    k = COUNT_TRIPLES_PER_LETTER_TRIPLE
    tri = np.repeat(np.repeat(triples[:, None, :], k, axis=1)[:, :, None, :], 3, axis=2)  # (2600, 200, 3, 3)
    cnt = np.repeat(counts[:, :, None, :], 3, axis=2)  # (2600, 200, 3, 3)
    query = np.broadcast_to(np.arange(3), (n_tri, k, 3))
    grid = _build_grid(tri.reshape(-1, 3), cnt.reshape(-1, 3), query.reshape(-1), rng)
    order = rng.permutation(len(grid))
    n_train = len(grid) * 3 // 4
    return DataSplit(train=grid[order[:n_train]], test=grid[order[n_train:]])
