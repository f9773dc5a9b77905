"""IOI prompts for a text model: the text task of a model whose inputs are the IOI distribution.

A text model (any: the bundled ioi model, or a local GPT-2 small) reads IOI prompts through its
own tokenizer; this task adds what the prompt distribution knows (engine/tasks/ioi_prompts.py):
a generator with a held-out split (decoder training and `eval-decoder` need no corpus), the
grammar check, each sample's IO and S names as its fact, and the positions S1, IO, S2 and END
(the token before the answer), found by aligning the prompt's names with the tokenizer's
character offsets. A model's record says `"prompts": "ioi"`, or a command's `--prompts ioi`.
"""
from __future__ import annotations

from functools import lru_cache, partial

import numpy as np

from engine.tasks.base import DataSplit, TaskInputError, Verdict
from engine.tasks.ioi_prompts import (
    HELD_OUT_PROMPTS,
    IOIPrompt,
    held_out_prompts,
    ioi_split,
    load_ioi,
    parse,
    sample_prompts,
    training_prompts,
)
from engine.tasks.text import TextTask

IOI_LABELS = ("S1", "IO", "S2", "END")
TRAIN_PROMPTS, TEST_PROMPTS = 250_000, HELD_OUT_PROMPTS  # the paper drew 250k prompts
ROW_LENGTH = 40  # decoder rows: BOS, the prompt, the decoder's EOS, padding (GPT-2 small: at most 31 tokens)


class IOITask(TextTask):
    prompts = "ioi"
    has_generator = True
    fact_name = "io_s"
    fact_header = "IO / S"
    score_name = "IO-name accuracy at END"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = load_ioi()
        self.held_out = ioi_split(self.data)
        # a query's samples are parsed for their check, fact and labels: once each text
        self._parse = lru_cache(maxsize=8192)(partial(parse, self.data))

    # ---- the distribution ---------------------------------------------------------------
    def rows(self, prompts: list[IOIPrompt], length: int = ROW_LENGTH) -> np.ndarray:
        """(N, length) decoder rows of whole prompts (answer included)."""
        grid = np.full((len(prompts), length), self.decoder_pad_id, dtype=np.int64)
        for i, ids in enumerate(self.encode_many([p.text for p in prompts])):
            ids = ids + [self.decoder_eos_id]
            if len(ids) > length:
                raise TaskInputError(f"an IOI prompt is {len(ids)} tokens with BOS and end; decoder rows hold {length}")
            grid[i, :len(ids)] = ids
        return grid

    def split(self, seed: int = 0, length: int = ROW_LENGTH) -> DataSplit:
        return _split(self, seed, length)

    def random_inputs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.rows(sample_prompts(self.data, n, rng))

    def held_out_size(self) -> int:
        return TEST_PROMPTS

    def decoder_site_names(self, config) -> tuple[str, ...]:
        """The paper's text sites plus every layer's residual stream out (x{L}.post): the IOI
        readings at END are about what the final residual stream holds."""
        return super().decoder_site_names(config) + tuple(f"x{layer}.post" for layer in range(config.n_layers))

    # ---- reading one prompt ---------------------------------------------------------------
    def parsed(self, ids) -> IOIPrompt | None:
        return self._parse(self.query_text(ids))

    def check(self, text: str) -> Verdict:
        if self._parse(text) is None:
            return Verdict(False, False, "not an IOI prompt (a template of the distribution with IO and S named as "
                                         "it says, ending with the IO name)")
        return Verdict(True, True, "")

    def fact(self, ids) -> str:
        p = self.parsed(ids)
        return f"IO {p.io}, S {p.s}" if p else ""

    def features(self, ids, position: int, query_ids=None) -> dict[str, str | None]:
        """The IO and S names, the template and its order (BABA or ABBA), the compared position's
        label (S1, IO, S2, END or the token), then the text features (engine/tasks/text.py)."""
        p = self.parsed(ids)
        labels = self.position_labels(ids)
        return {"IO": p.io.strip() if p else None, "S": p.s.strip() if p else None,
                "template": str(p.template % 30) if p else None, "order": p.order if p else None,
                "compared at": labels[position] if 0 <= position < len(labels) else None,
                **super().features(ids, position, query_ids)}

    def ioi_positions(self, ids) -> dict[str, int]:
        """{S1, IO, S2, END: token position} of a prompt (ids with BOS as the model reads it);
        {} when it is not an IOI prompt."""
        ids = [int(i) for i in ids]
        p = self.parsed(ids)
        if p is None:
            return {}
        offset = 1 if self.prepend_bos and ids and ids[0] == self.bos_id else 0
        ends = [end for _, end in self.vocab.backend.encode(p.text).offsets]  # a token ends where its text ends
        out = {}
        for label in IOI_LABELS:
            end = p.spans[label][1]
            if end in ends:
                out[label] = ends.index(end) + offset
        return out

    def position_labels(self, ids) -> list[str]:
        """The tokens as shown, with S1, IO, S2 and END in place of theirs (the token strip shows a
        label under its token where the two differ; positions can be chosen by these names)."""
        labels = super().position_labels(ids)
        for label, at in self.ioi_positions(ids).items():
            labels[at] = label
        return labels

    def resolve_position(self, ids, position: int | str) -> int:
        if isinstance(position, str) and position in IOI_LABELS:
            found = self.ioi_positions(ids).get(position)
            if found is None:
                raise TaskInputError(f"{position} is not a position of this input (it is not an IOI prompt)")
            return found
        return super().resolve_position(ids, position)

    def default_position(self, labels: list[str]) -> int:
        return max(0, len(labels) - 2)  # END: the token before the answer

    def answer_position(self, ids) -> int:
        """END predicts the IO name (a prompt that is not an IOI prompt: the task's default)."""
        found = self.ioi_positions(ids).get("END")
        return found if found is not None else super().answer_position(ids)

    def format_hint(self) -> str:
        return ("an IOI prompt, e.g. 'After Mary and John went to the store, Mary gave a drink to John' "
                f"(one of {len(self.data.templates)} templates, {len(self.data.names)} names)")

    def examples(self) -> list[str]:
        return ["After Erin and Justin went to the house, Erin gave a ring to Justin",
                "Then, Mary and John went to the store. John gave a drink to Mary",
                "Then, Sarah and Michael had a long argument, and afterwards Michael said to Sarah"]


@lru_cache(maxsize=8)
def _split(task: IOITask, seed: int, length: int) -> DataSplit:
    train = training_prompts(task.data, task.held_out, TRAIN_PROMPTS, seed)
    test = held_out_prompts(task.data, task.held_out, TEST_PROMPTS, seed)
    return DataSplit(task.rows(train, length), task.rows(test, length))
