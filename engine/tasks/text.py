"""Free text for a real language model: the task of a Hugging Face text model.

A text model was trained on text, not on a grammar of ours, so every string is a well-formed
input. The model's tokenizer (engine/text/hf_tokenizer.py) splits it; the model's BOS convention
decides what comes first (GPT-2 prepends <|endoftext|>, id 50256, which is also its EOS and PAD).
A query is a prompt: no EOS is added, and the last position, the one that predicts the next
token, is where the app starts.

The task is per model (its tokenizer), so it is not in TASKS: `get_task("text")` gives an
unbound one (its fixed attributes: names, columns, default site), and `TextTask.bound(...)`
the one a loaded model carries. A decoder for a text model (the paper's GPT-2 IOI decoder) adds
its own EOS and PAD beyond the model's vocabulary, because GPT-2's one id for all three cannot
end a sample: `decoder_vocab_size` leaves room for those two.
"""
from __future__ import annotations

import numpy as np

from engine.tasks.base import DataSplit, Task, TaskInputError, Verdict
from engine.text.tokenizer import TokenizerInputError

TEXT_TASK = "text"
PRESENCE_TOKENS = 24  # "has this query token" features of a text query (a long prompt's tail is left out)


class TextTask(Task):
    name = TEXT_TASK
    fact_name = "fact"
    fact_header = "Fact"
    probed_config = None  # a real model brings its own architecture
    score_name = "next-token accuracy"
    default_site = "x0.post"  # every model has it; the app moves on from there
    has_generator = False
    is_text = True
    prompts: str | None = None  # the prompt distribution a subclass brings (engine/tasks/ioi.py: "ioi")
    query_schedule = "text"  # (0.5, 0), (1, 0), (1, 0.1), 256 candidates each: the paper's GPT-2 queries
    query_metric = "cosine"
    query_candidates = 768

    def __init__(self, tokenizer=None, n_ctx: int = 0, bos_id: int | None = None, eos_id: int | None = None,
                 pad_id: int | None = None, prepend_bos: bool = True):
        self.vocab = tokenizer
        self.n_ctx = int(n_ctx)
        self.bos_id = -1 if bos_id is None else int(bos_id)  # -1: no such token (never matches an id)
        self.eos_id = -1 if eos_id is None else int(eos_id)
        self.pad_id = self.eos_id if pad_id is None else int(pad_id)
        self.prepend_bos = prepend_bos and bos_id is not None
        self.bos_position = 0

    @classmethod
    def bound(cls, tokenizer, n_ctx: int, bos_id, eos_id, pad_id) -> TextTask:
        return cls(tokenizer, n_ctx, bos_id, eos_id, pad_id)

    # ---- the decoder's token layout (docs/design.md §2) ------------------------------------
    @property
    def decoder_vocab_size(self) -> int:
        """The model's vocabulary plus a decoder's own EOS and PAD (the paper: 50257 and 50258)."""
        return self._tokenizer().vocab_size + 2

    @property
    def decoder_eos_id(self) -> int:
        return self._tokenizer().vocab_size

    @property
    def decoder_pad_id(self) -> int:
        return self._tokenizer().vocab_size + 1

    @property
    def filler_id(self) -> int:
        """An id the model can embed, written after a sample's end when samples are re-run as one
        grid: the model is causal and those positions are never compared, so any id would do."""
        return self.pad_id if self.pad_id >= 0 else max(self.bos_id, 0)

    def sample_ids(self, row) -> list[int]:
        """The model input a decoder row stands for: its tokens up to the decoder's EOS or PAD
        (exclusive: a text input has no end token of its own)."""
        vocab, out = self._tokenizer().vocab_size, []
        for i in map(int, row):
            if i >= vocab:
                break
            out.append(i)
        return out

    def model_grid(self, grid: np.ndarray) -> np.ndarray:
        """A grid of decoder rows as the model reads it: the decoder's own ids become filler."""
        grid = np.asarray(grid)
        return np.where(grid >= self._tokenizer().vocab_size, self.filler_id, grid)

    def decoder_site_names(self, config) -> tuple[str, ...]:
        """The paper's choice for a text model: the first residual stream, every head's result,
        every MLP out (157 sites at GPT-2 small)."""
        names = ["x0.pre"]
        for layer in range(config.n_layers):
            names += [f"a{layer}.{h}" for h in range(config.n_heads)] + [f"m{layer}"]
        return tuple(names)

    def _tokenizer(self):
        if self.vocab is None:
            raise TaskInputError("this text task has no tokenizer: open the model it belongs to")
        return self.vocab

    # ---- text <-> tokens ---------------------------------------------------------------
    def normalize(self, text: str) -> str:
        if not text.strip():
            raise TaskInputError(f"the input is empty; {self.format_hint()}")
        return text  # spaces and newlines are tokens of their own here: nothing is stripped

    def encode(self, text: str) -> list[int]:
        return self._fitted(super().encode(text))  # the tokenizer's complaint as a TaskInputError

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """encode for many texts, through the tokenizer's batch call where it has one."""
        many = getattr(self._tokenizer(), "encode_many", None)
        if many is None:
            return [self.encode(t) for t in texts]
        try:
            return [self._fitted(ids) for ids in many(texts)]
        except TokenizerInputError as e:
            raise TaskInputError(str(e)) from None

    def _fitted(self, ids: list[int]) -> list[int]:
        """Tokens as the model reads them: BOS first where the model wants it, within its context."""
        ids = [self.bos_id, *ids] if self.prepend_bos else ids
        if len(ids) > self.n_ctx:
            with_bos = " with BOS" if self.prepend_bos else ""
            raise TaskInputError(f"the input is {len(ids)} tokens long{with_bos}; this model's context holds "
                                 f"at most {self.n_ctx}")
        return ids

    def tokenize(self, text: str) -> list[int]:
        return self.encode(self.normalize(text))

    def query_text(self, ids) -> str:
        ids = self.sample_ids(ids)  # a decoder row's own end and padding are not text
        return self._tokenizer().decode(ids[1:] if self.prepend_bos and ids and ids[0] == self.bos_id else ids)

    def detokenize(self, ids) -> str:
        return self.query_text(ids)

    def rejected_pieces(self, text: str) -> tuple[list[str], set[int]]:
        ids = self._tokenizer().encode(text)
        return self._tokenizer().token_strings(ids), set()

    # ---- what a task defines -------------------------------------------------------------
    def check(self, text: str) -> Verdict:
        return Verdict(well_formed=True, answer_correct=False, reason="")

    def position_labels(self, ids) -> list[str]:
        """The tokens as shown (␣Mary): positions are chosen by index or by token text."""
        return self._tokenizer().token_strings(ids)

    def format_hint(self) -> str:
        return (f"type any text; the model's tokenizer splits it, and the model reads at most {self.n_ctx} "
                "tokens")

    def split(self, seed: int = 0) -> DataSplit:
        raise TaskInputError("a text model has no built-in data set; its inputs are the text you type")

    def random_inputs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise TaskInputError("a text model has no built-in input generator; its inputs are the text you type")

    def held_out_size(self) -> int:
        return 0

    def loss_mask(self, tokens: np.ndarray) -> np.ndarray:
        """Every position predicts the next token (the last one predicts the continuation)."""
        tokens = np.asarray(tokens)
        return tokens != self.pad_id if self.pad_id != self.bos_id else np.ones(tokens.shape, dtype=bool)

    def decoder_positions(self, tokens: np.ndarray) -> np.ndarray:
        return ~self.special_mask(tokens)

    def special_mask(self, tokens: np.ndarray) -> np.ndarray:
        """BOS where the model put it (position 0); EOS and PAD elsewhere; a decoder's own end and
        padding ids. GPT-2's one id for all three is content nowhere, so any <|endoftext|> counts
        as special."""
        tokens = np.asarray(tokens)
        return super().special_mask(tokens) | (tokens >= self._tokenizer().vocab_size)

    def fact(self, ids) -> str:
        return ""

    def features(self, ids, position: int, query_ids=None) -> dict[str, str | None]:
        """The token at the compared position, the token before it, and for each distinct token of
        the query (at most PRESENCE_TOKENS, BOS left out) whether the input has it."""
        ids = [int(i) for i in ids]
        pieces = self._tokenizer().token_strings(ids)
        out = {"token": pieces[position] if 0 <= position < len(ids) else None,
               "previous token": pieces[position - 1] if 1 <= position < len(ids) else None}
        if query_ids is not None:
            seen = set(ids)
            query_ids = [int(i) for i in query_ids]
            wanted = [i for i in dict.fromkeys(query_ids) if i != self.bos_id][:PRESENCE_TOKENS]
            for i, piece in zip(wanted, self._tokenizer().token_strings(wanted)):
                out[f"has {piece}"] = "yes" if i in seen else "no"
        return out

    def examples(self) -> list[str]:
        return ["When Mary and John went to the store, John gave a drink to",
                "The Eiffel Tower is in the city of"]

    def default_position(self, labels: list[str]) -> int:
        return max(0, len(labels) - 1)  # the last token: it predicts what comes next
