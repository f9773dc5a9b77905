"""The interface every task fills: a vocabulary, a grammar, position labels and a data split.

A task is what a probed model was trained on. The synthetic tasks (character counting, 3-digit
addition) fill it with fixed-width token grids; a later text task can fill the same methods
with a BPE tokenizer.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.text import CharTokenizer, TokenizerInputError


class TaskInputError(TokenizerInputError):
    """A string that is not a valid input for a task; the message says what is allowed."""


@dataclass(frozen=True)
class Verdict:
    """The grammar check's answer for one string."""

    well_formed: bool
    answer_correct: bool  # False when not well formed
    reason: str  # empty when well formed


@dataclass(frozen=True)
class DataSplit:
    """Token grids for training and held-out testing, each (N, n_ctx) int64."""

    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class AgreementProbe:
    """A reading a decoder check verifies: at `site`, at the position `position_of(tokens)` gives
    per row, in-epsilon samples should share the query's fact (counting: its count)."""

    site: str
    position_of: Callable[[np.ndarray], np.ndarray]  # (N, T) tokens -> (N,) positions
    where: str  # how the check names the node, e.g. "x1.post at ':'"
    shared: str  # what the samples should share, e.g. "the query's count"


class Task(ABC):
    """A task the probed models were trained on; it carries everything that differs by task, so
    no module outside engine/tasks/ asks which task it has."""

    name: str
    vocab: CharTokenizer  # the synthetic tasks' tokenizer; any engine.text.Tokenizer fills the seam
    n_ctx: int
    bos_id: int
    eos_id: int
    pad_id: int
    fact_name: str = "fact"  # the CSV column of the per-sample fact
    fact_header: str = "Fact"  # the results table's column
    probed_config: object  # ProbedConfig of the paper's model for this task
    paper_sites: tuple[str, ...] = ()  # the sites the paper trained its decoder on (empty: all)
    train_schedule: dict = {}  # ProbedTrainConfig fields of the default probed-model schedule
    score_name: str = "accuracy"  # what eval-probed reports
    paper_result: str = ""  # the paper's figure, quoted in model cards
    default_site: str = "x0.post"  # where the app starts
    default_position_label: str | None = None  # the position the app starts at (None: the last)
    # Where the start token (BOS) sits: its activation carries nothing about the input, so the
    # decoder is taught that it says nothing and the prob-diff colouring compares against it.
    bos_position: int = 0
    has_generator: bool = True  # random_inputs works (a text model's inputs are only what is typed)
    is_text: bool = False  # a language model's free text (its own tokenizer), not a fixed grid of ours
    # The paper's query settings for the task's models (engine/query/types.py default_options).
    query_schedule: str = "auto"
    query_metric: str = "euclidean"
    query_candidates: int = 1024

    # ---- text <-> tokens -------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Token ids of a query text (adds BOS and EOS when the text leaves them out)."""
        return self.encode(self.normalize(text))

    def detokenize(self, ids) -> str:
        """Text of a token sequence, cut after the first EOS, without padding."""
        return self.vocab.decode(self.cut(ids))

    def cut(self, ids) -> list[int]:
        """The ids of one input in a padded row: up to and including the first EOS after the
        start token, without padding. A leading BOS is skipped when looking, so that a
        tokenizer whose BOS, EOS and PAD share an id (GPT-2) cuts the same way."""
        ids = list(map(int, ids))
        for i in range(1 if ids and ids[0] == self.bos_id else 0, len(ids)):
            if ids[i] == self.eos_id:
                return ids[:i + 1]
            if ids[i] == self.pad_id:
                return ids[:i]
        return ids

    def normalize(self, text: str) -> str:
        """The canonical form of a user's query: BOS and EOS added, whitespace removed."""
        text = "".join(text.split())
        if not text:
            raise TaskInputError(f"the {self.name} input is empty; {self.format_hint()}")
        self.encode(text)  # raises with the allowed characters
        bos, eos = self.vocab.chars[self.bos_id], self.vocab.chars[self.eos_id]
        if not text.startswith(bos):
            text = bos + text
        if not text.endswith(eos):
            text = text + eos
        if len(text) > self.n_ctx:
            raise TaskInputError(
                f"the {self.name} input has {len(text):,} tokens with BOS and EOS (a token per character); "
                f"at most {self.n_ctx} are allowed"
            )
        return text

    def pad(self, ids: list[int]) -> list[int]:
        return list(ids) + [self.pad_id] * (self.n_ctx - len(ids))

    def parse_query(self, text: str) -> list[int]:
        """Tokens of a well-formed query, or TaskInputError naming what is wrong."""
        norm = self.normalize(text)
        verdict = self.check(norm)
        if not verdict.well_formed:
            raise TaskInputError(f"not a well-formed {self.name} input: {verdict.reason}; {self.format_hint()}")
        return self.encode(norm)

    def query_text(self, ids) -> str:
        """An input as the query editor shows it: without the EOS that `normalize` adds back."""
        ids = self.cut(ids)
        return self.vocab.decode(ids[:-1] if ids and ids[-1] == self.eos_id else ids)

    def rejected_pieces(self, text: str) -> tuple[list[str], set[int]]:
        """A text that does not parse, cut into pieces to show, and which pieces the tokenizer
        rejects (one character per piece: the synthetic tasks' tokenizer)."""
        chars = list("".join(text.split()))
        return chars, {i for i, c in enumerate(chars) if self.vocab.token_id(c) is None}

    def encode(self, text: str) -> list[int]:
        """The tokenizer's ids, its complaint raised as a TaskInputError."""
        try:
            return self.vocab.encode(text)
        except TokenizerInputError as e:
            raise TaskInputError(str(e)) from None

    # ---- what each task defines -------------------------------------------------------
    @abstractmethod
    def check(self, text: str) -> Verdict:
        """Is this (BOS..EOS) string a well-formed input, and is its answer right?"""

    @abstractmethod
    def position_labels(self, ids) -> list[str]:
        """A short label per token of one sequence (e.g. ':' or 'A1')."""

    @abstractmethod
    def format_hint(self) -> str:
        """One sentence describing the allowed input format, with an example."""

    @abstractmethod
    def split(self, seed: int = 0) -> DataSplit:
        """The deterministic 75/25 train/test split of the task's data."""

    @abstractmethod
    def random_inputs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, n_ctx) int64 token grids of fresh random well-formed inputs."""

    @abstractmethod
    def loss_mask(self, tokens: np.ndarray) -> np.ndarray:
        """(N, n_ctx) bool: which *target* positions the probed model is trained to predict.

        Entry [n, i] is True when the logits at position i are scored against token i+1.
        """

    @abstractmethod
    def decoder_positions(self, tokens: np.ndarray) -> np.ndarray:
        """(N, n_ctx) bool: positions whose activations the decoder is trained to invert."""

    @abstractmethod
    def fact(self, ids) -> str:
        """The task fact shown next to a sample (counting: the true count; addition: sum right?)."""

    @abstractmethod
    def examples(self) -> list[str]:
        """A few example queries for pickers and help texts."""

    # ---- what a task may refine ---------------------------------------------------------
    def scored_positions(self, tokens: np.ndarray) -> np.ndarray:
        """(N, n_ctx) bool: the predictions that must all be right for an input to count as
        correct (eval-probed); by default the trained positions."""
        return self.loss_mask(tokens)

    def agreement_probe(self) -> AgreementProbe | None:
        """The fact-sharing reading a decoder check verifies, if the task has one."""
        return None

    def default_position(self, labels: list[str]) -> int:
        """The position the app selects for a new query (given its position labels): the
        task's showcase label, else the last before EOS."""
        want = self.default_position_label
        return labels.index(want) if want in labels else max(0, len(labels) - 2)  # last before EOS

    def answer_position(self, ids) -> int:
        """The position whose logits predict an input's answer (activation patching reads them
        there, engine/patching/): by default the one before the last real token, i.e. the
        position whose next token is the final token before EOS (the final token when there is
        no EOS, as in a text prompt that ends with its answer)."""
        ids = self.cut(ids)
        last = len(ids) - 1
        if len(ids) > 1 and ids[-1] == self.eos_id:
            last -= 1  # EOS is not the answer: the token before it is
        return max(0, last - 1)

    def held_out_size(self) -> int:
        return len(self.split(0).test)

    # ---- what a preimage may share (engine/explain/summary.py) ---------------------------
    def features(self, ids, position: int, query_ids=None) -> dict[str, str | None]:
        """Candidate features of an input read at `position`: name -> value, None where the
        input has none (a malformed sample). The preimage summary compares each sample's values
        with the query's. query_ids: the query's tokens, for features that depend on it (a text
        model's "has this query token"). Here: the label of the compared position."""
        labels = self.position_labels(ids)
        return {"compared at": labels[position] if 0 <= position < len(labels) else None}

    # ---- the decoder's token layout ------------------------------------------------------
    # A decoder writes whole inputs: BOS, the tokens, an end token, then padding. The synthetic
    # tasks' vocabularies have their own EOS and PAD, so the decoder shares the model's ids; a
    # text task adds two ids of the decoder's own beyond the model's vocabulary (GPT-2 has one id
    # for BOS, EOS and PAD). These four say which ids a decoder row uses and how to turn it back
    # into the model's input.
    @property
    def decoder_vocab_size(self) -> int:
        return self.vocab.vocab_size

    @property
    def decoder_eos_id(self) -> int:
        return self.eos_id

    @property
    def decoder_pad_id(self) -> int:
        return self.pad_id

    @property
    def filler_id(self) -> int:
        """The id written after an input's end when inputs of several lengths share a grid."""
        return self.pad_id

    def sample_ids(self, row) -> list[int]:
        """The model input a decoder row stands for: BOS..EOS without padding (`cut`)."""
        return self.cut(row)

    def model_grid(self, grid: np.ndarray) -> np.ndarray:
        """A grid of decoder rows as the model reads it (the same ids here)."""
        return np.asarray(grid)

    def decoder_site_names(self, config) -> tuple[str, ...]:
        """The sites a decoder is trained on by default: the paper's (empty: every site)."""
        return self.paper_sites

    # ---- shared helpers -----------------------------------------------------------------
    def special_mask(self, tokens: np.ndarray) -> np.ndarray:
        """(N, n_ctx) bool: BOS, EOS and PAD positions (never compared by InversionView)."""
        return (tokens == self.bos_id) | (tokens == self.eos_id) | (tokens == self.pad_id)

    def resolve_position(self, ids, position: int | str) -> int:
        """A position given as an index or as a label (':' or 'A1'), checked against the input."""
        labels = self.position_labels(ids)
        n = len(labels)
        if isinstance(position, str) and position.lstrip("-").isascii() and position.lstrip("-").isdigit():
            if len(position) > 9:  # no input is that long; int() of thousands of digits even fails
                raise TaskInputError(f"position {position[:12]}... is out of range; "
                                     f"this input has positions 0-{n - 1}")
            position = int(position)
        if isinstance(position, int):
            if not 0 <= position < n:
                raise TaskInputError(f"position {position} is out of range; this input has positions 0-{n - 1}")
            return position
        hits = [i for i, lab in enumerate(labels) if lab == position]
        if len(hits) != 1:
            unique = [lab for lab in labels if labels.count(lab) == 1]
            why = "is not a position label" if not hits else "names several positions"
            raise TaskInputError(
                f"{position!r} {why} of this input; use an index 0-{n - 1} or one of: {' '.join(unique)}"
            )
        return hits[0]
