"""Where a decoder's inputs come from: the task's own generator, or a text corpus.

Either way the result is two grids of decoder rows (BOS, tokens, the decoder's EOS, its PAD;
engine/tasks/base.py "the decoder's token layout"): the training inputs that pairs are drawn
from, and held-out inputs that the quality checks and `eval-decoder` query. A corpus is cut
into windows that fit the decoder's length, and split by a hash of each window, so the same
corpus and seed always give the same held-out windows (the decoder's record keeps both).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.tasks.base import TaskInputError

TEXT_DECODER_LENGTH = 40  # a text decoder's context (BOS + 38 tokens + EOS) unless chosen
HELD_OUT_SHARE = 0.05


@dataclass
class DecoderInputs:
    train: np.ndarray  # (N, n_ctx) decoder rows
    test: np.ndarray  # (M, n_ctx)
    source: dict  # what the decoder's record keeps: {"kind": "task"} or the corpus file and seed

    def describe(self) -> str:
        if self.source["kind"] == "corpus":
            return (f"corpus {self.source['path']} ({len(self.train):,} training and {len(self.test):,} "
                    f"held-out windows of at most {self.train.shape[1]} tokens)")
        return f"the task's generator ({len(self.train):,} training and {len(self.test):,} held-out inputs)"


def decoder_length(task, chosen: int | None) -> int:
    """The decoder's context: a synthetic task's fixed grid, or for a text model `chosen`
    (default TEXT_DECODER_LENGTH), never more than the model reads."""
    if not task.is_text:
        if chosen is not None and chosen != task.n_ctx:
            raise TaskInputError(f"a {task.name} decoder writes whole {task.n_ctx}-token inputs; "
                                 f"--length {chosen} is not allowed for it")
        return task.n_ctx
    length = TEXT_DECODER_LENGTH if chosen is None else chosen
    if not 3 <= length <= task.n_ctx:
        raise TaskInputError(f"a decoder length of {length} is not allowed: give 3 to {task.n_ctx} "
                             "(this model's context)")
    return length


def task_inputs(task, length: int | None = None) -> DecoderInputs:
    """The task generator's split; a text task's (IOI prompts) as decoder rows of `length`."""
    if task.is_text:
        split = task.split(0, length or TEXT_DECODER_LENGTH)
        return DecoderInputs(split.train, split.test, {"kind": "task", "prompts": task.prompts})
    split = task.split(0)
    return DecoderInputs(split.train, split.test, {"kind": "task"})


def corpus_inputs(task, path: Path, length: int, seed: int = 0) -> DecoderInputs:
    """Windows of a corpus file (engine/text/corpus.py) as decoder rows of `length` tokens."""
    from engine.text.corpus import CorpusError, corpus_windows, read_corpus, split_windows, window_grid

    if not task.is_text:
        raise TaskInputError(f"a {task.name} model trains on its task's own inputs; --corpus is for text models")
    texts = read_corpus(path)
    bos = task.bos_id if task.prepend_bos else None
    room = length - 1 - (bos is not None)  # the window's tokens, after BOS and before EOS
    windows = corpus_windows(texts, task.vocab.encode, room)
    if len(windows) < 2:
        raise CorpusError(f"{path}: the corpus gives {len(windows)} window(s) of text; at least 2 are needed "
                          "(one to train on, one held out)")
    train, test = split_windows(windows, HELD_OUT_SHARE, seed)
    grid = [window_grid(w, length, bos, task.decoder_eos_id, task.decoder_pad_id) for w in (train, test)]
    return DecoderInputs(grid[0], grid[1], {"kind": "corpus", "path": str(Path(path).resolve()), "seed": seed})


def inputs_for(task, corpus: Path | None, length: int, seed: int = 0) -> DecoderInputs:
    """The task's inputs, or the corpus's; a text model without a corpus is a one-line error."""
    if corpus is not None:
        return corpus_inputs(task, corpus, length, seed)
    if not task.has_generator:
        raise TaskInputError("a text model has no input generator: give --corpus FILE (plain text, one text "
                             "per line, or JSON Lines with a \"text\" field), or --prompts ioi")
    return task_inputs(task, length)
