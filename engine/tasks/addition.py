"""3-digit addition (docs/design.md §3): `B` + `abc+def=` + the sum (3 or 4 digits) + `E`, padded to 14."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from engine.probed.config import ProbedConfig
from engine.tasks.base import DataSplit, Task, Verdict
from engine.text import CharTokenizer

# ids: digits 0-9 = 0-9, B = 10, + = 11, = = 12, E = 13, P = 14
VOCAB = CharTokenizer("0123456789" + "B+=EP", specials="BEP")
N_CTX = 14
_FORM = re.compile(r"^B(\d{3})\+(\d{3})=(\d{1,4})E$")
_OPERAND_LABELS = ["F1", "F2", "F3", "+", "S1", "S2", "S3", "="]


class AdditionTask(Task):
    name = "addition"
    vocab = VOCAB
    n_ctx = N_CTX
    bos_id = VOCAB.id_of("B")
    eos_id = VOCAB.id_of("E")
    pad_id = VOCAB.id_of("P")
    fact_name = "sum_correct"
    fact_header = "Sum"
    probed_config = ProbedConfig("addition", n_layers=2, n_heads=4, d_model=32, d_mlp=128, n_ctx=14, d_vocab=15)
    paper_sites = ("x0.pre", "a0.0", "a0.1", "a0.2", "a0.3", "x0.mid", "x0.post",
                   "a1.0", "a1.1", "a1.2", "a1.3", "x1.mid", "x1.post")
    train_schedule = {"steps": 4_000, "batch_size": 512, "lr": 3e-3, "warmup": 300}
    score_name = "exact-match accuracy"
    paper_result = "98.01% test exact match (batch 512, lr 1e-4, 59,350 steps)"
    default_site = "x1.post"
    default_position_label = "="

    def scored_positions(self, tokens: np.ndarray) -> np.ndarray:
        return self.answer_mask(tokens)  # every answer digit and the EOS after it

    def answer_position(self, ids) -> int:
        """'=' predicts the first digit of the sum."""
        ids = [int(i) for i in ids]
        eq = VOCAB.id_of("=")
        return ids.index(eq) if eq in ids else super().answer_position(ids)

    def format_hint(self) -> str:
        return "an addition input is two 3-digit numbers (100-999) and their sum, e.g. B615+861=1476"

    def examples(self) -> list[str]:
        return ["B615+861=1476", "B123+456=579", "B999+999=1998", "B305+197=502"]

    def check(self, text: str) -> Verdict:
        m = _FORM.match(text)
        if not m:
            return Verdict(False, False, "it must read B, three digits, '+', three digits, '=', the sum, E")
        a, b, s = m.groups()
        if a[0] == "0" or b[0] == "0":
            return Verdict(False, False, "both operands must be 100-999 (no leading zero)")
        if len(s) < 3 or s[0] == "0":
            return Verdict(False, False, "the sum must have 3 or 4 digits and no leading zero")
        return Verdict(True, int(a) + int(b) == int(s), "")

    def position_labels(self, ids) -> list[str]:
        text = "".join(VOCAB.chars[int(i)] for i in ids)
        labels = []
        answer = 0
        for i, ch in enumerate(text):
            if ch in "BEP":
                labels.append(ch)
            elif 1 <= i <= 8:
                labels.append(_OPERAND_LABELS[i - 1])
            else:
                answer += 1
                labels.append(f"A{answer}")
        return labels

    def fact(self, ids) -> str:
        verdict = self.check(self.detokenize(ids))
        if not verdict.well_formed:
            return "malformed"
        return "right" if verdict.answer_correct else "wrong"

    def features(self, ids, position: int, query_ids=None) -> dict[str, str | None]:
        """Each operand digit (F1-F3, S1-S3), each carry (C1 out of the ones, C2 out of the tens,
        C3 out of the hundreds: a 4-digit sum) and each answer digit as written (A1-A4; '-' where
        a 3-digit answer has no A4). None for all of them when the sample is malformed."""
        m = _FORM.match(self.detokenize(ids))
        names = [*_OPERAND_LABELS[:3], *_OPERAND_LABELS[4:7], "C1", "C2", "C3", "A1", "A2", "A3", "A4"]
        if not m:
            return {**dict.fromkeys(names), **super().features(ids, position)}
        a, b, answer = m.groups()
        carries, carry = [], 0
        for da, db in zip(reversed(a), reversed(b)):  # ones column first
            carry = (int(da) + int(db) + carry) // 10
            carries.append(str(carry))
        values = [*a, *b, *carries, *answer.ljust(4, "-")[:4]]
        return {**dict(zip(names, values)), **super().features(ids, position)}

    # ---- data ------------------------------------------------------------------------
    def split(self, seed: int = 0) -> DataSplit:
        return _addition_split(seed)

    def random_inputs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        a = rng.integers(100, 1000, size=n)
        b = rng.integers(100, 1000, size=n)
        return _build_grid(a, b)

    def loss_mask(self, tokens: np.ndarray) -> np.ndarray:
        # every next token that is not padding (the paper's loss), i.e. positions 0..EOS-1
        nxt = np.concatenate([tokens[:, 1:], np.full((len(tokens), 1), self.pad_id)], axis=1)
        return nxt != self.pad_id

    def answer_mask(self, tokens: np.ndarray) -> np.ndarray:
        """(N, n_ctx) bool: positions whose next token is part of the answer (sum digits and E)."""
        after_eq = np.cumsum(tokens == VOCAB.id_of("="), axis=1) > 0
        nxt = np.concatenate([tokens[:, 1:], np.full((len(tokens), 1), self.pad_id)], axis=1)
        return after_eq & (nxt != self.pad_id)

    def decoder_positions(self, tokens: np.ndarray) -> np.ndarray:
        return ~self.special_mask(tokens)


def _build_grid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 14) token grids for operand arrays a, b (N,) in 100..999."""
    n = len(a)
    s = a + b
    grid = np.full((n, N_CTX), VOCAB.id_of("P"), dtype=np.int64)
    grid[:, 0] = VOCAB.id_of("B")
    for k, div in enumerate((100, 10, 1)):
        grid[:, 1 + k] = (a // div) % 10
        grid[:, 5 + k] = (b // div) % 10
    grid[:, 4] = VOCAB.id_of("+")
    grid[:, 8] = VOCAB.id_of("=")
    four = s >= 1000
    rows = np.arange(n)
    for k, div in enumerate((1000, 100, 10, 1)):
        # 4-digit sums fill A1..A4; 3-digit sums fill A1..A3 from the hundreds digit
        col = np.where(four, 9 + k, 9 + k - 1)
        keep = four | (k > 0)
        grid[rows[keep], col[keep]] = ((s // div) % 10)[keep]
    grid[rows, np.where(four, 13, 12)] = VOCAB.id_of("E")
    return grid


@lru_cache(maxsize=2)
def _addition_split(seed: int) -> DataSplit:
    """All 810,000 pairs of operands 100-999, split 75/25."""
    a, b = np.meshgrid(np.arange(100, 1000), np.arange(100, 1000), indexing="ij")
    grid = _build_grid(a.reshape(-1), b.reshape(-1))
    order = np.random.default_rng(seed).permutation(len(grid))
    n_train = len(grid) * 3 // 4
    return DataSplit(train=grid[order[:n_train]], test=grid[order[n_train:]])
