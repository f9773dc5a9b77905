"""The IOI prompt distribution: Wang et al. 2022's indirect-object-identification prompts in the
"mixed" form the InversionView paper trained its GPT-2 small decoder on (resources/ioi.json).

30 BABA templates and their 30 ABBA twins (the first [B] and the first [A] swapped), 99 names,
8 places, 8 objects. [A] is the indirect object IO and [B] the subject S, which is named twice;
every prompt ends with the IO name ("Then, Mary and John went to the store. John gave a drink to
Mary"). The model's job is that last name: at END, the token before it, it should predict IO.

A split holds out whole template pairs (a BABA template with its ABBA twin), and holds out 20
names as the indirect object of one order: half are never the IO of a BABA prompt in training,
half never of an ABBA prompt, and held-out prompts ask for them there. Held-out prompts have a
held-out template, or a held-out (name, order), or both. Names are not held out altogether: a
model trained from scratch does not name as IO a token it never saw as one (measured: 10% IO
accuracy on such names against 100% on held-out templates), where GPT-2 has seen every name. The grammar check
(`parse`) says whether a text is one of these prompts, with IO and S named as its template says.

Plain Python: the tokenizer's side (which tokens are S1, IO, S2, END) is the task's.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.store.shipped import shipped_dir


@dataclass(frozen=True)
class Template:
    index: int  # 0-29 BABA, 30-59 their ABBA twins in the same order
    pattern: str  # "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]"

    @property
    def order(self) -> str:
        return "BABA" if self.index < 30 else "ABBA"

    @property
    def pair(self) -> int:
        """The BABA template this one is or twins: held out together."""
        return self.index % 30


@dataclass(frozen=True)
class IOIData:
    names: tuple[str, ...]
    places: tuple[str, ...]
    objects: tuple[str, ...]
    templates: tuple[Template, ...]  # BABA first, then ABBA


@dataclass(frozen=True)
class IOIPrompt:
    text: str  # the whole prompt, ending with the IO name
    io: str
    s: str
    template: int
    place: str
    obj: str
    spans: dict  # label -> (start, end) in text: S1, IO, S2, END (the word before the answer), ANSWER

    @property
    def order(self) -> str:
        return "BABA" if self.template < 30 else "ABBA"

    @property
    def prompt(self) -> str:
        """What the model completes: the text without the answer (the IO name and its space)."""
        return self.text[:self.spans["END"][1]]


@dataclass(frozen=True)
class IOISplit:
    train_templates: tuple[int, ...]
    test_templates: tuple[int, ...]
    train_names: tuple[str, ...]  # the IO of either order in training
    test_names: tuple[str, ...]  # held out as the IO of one order: the first half ABBA, the rest BABA

    def held_out_io(self, order: str) -> tuple[str, ...]:
        """The names never the IO of an `order` prompt in training."""
        half = len(self.test_names) // 2
        return self.test_names[:half] if order == "ABBA" else self.test_names[half:]

    def training_io(self, order: str) -> tuple[str, ...]:
        """The names an `order` training prompt may have as IO."""
        held = set(self.held_out_io(order))
        return tuple(n for n in self.train_names + self.test_names if n not in held)


@lru_cache(maxsize=4)
def load_ioi(path: Path | None = None) -> IOIData:
    d = json.loads(Path(path or shipped_dir("resources") / "ioi.json").read_text(encoding="utf-8"))
    patterns = list(d["baba_templates"]) + list(d["abba_templates"])
    return IOIData(tuple(d["names"]), tuple(d["places"]), tuple(d["objects"]),
                   tuple(Template(i, p) for i, p in enumerate(patterns)))


def ioi_split(data: IOIData, seed: int = 0, held_pairs: int = 6, held_names: int = 20) -> IOISplit:
    """Hold out `held_pairs` template pairs (BABA and ABBA twin together) and `held_names` names."""
    rng = np.random.default_rng([seed, 17])
    pairs = rng.permutation(30)
    test_pairs = set(int(p) for p in pairs[:held_pairs])
    names = rng.permutation(len(data.names))
    test_names = tuple(data.names[int(i)] for i in names[:held_names])
    return IOISplit(
        train_templates=tuple(t.index for t in data.templates if t.pair not in test_pairs),
        test_templates=tuple(t.index for t in data.templates if t.pair in test_pairs),
        train_names=tuple(n for n in data.names if n not in test_names),
        test_names=test_names,
    )


@lru_cache(maxsize=256)
def _pieces(pattern: str) -> tuple[str, ...]:
    """A template's literal text and its slots, in order (split once: fill runs 250k times a split)."""
    return tuple(re.split(r"(\[A\]|\[B\]|\[PLACE\]|\[OBJECT\])", pattern))


def fill(data: IOIData, template: int, io: str, s: str, place: str, obj: str) -> IOIPrompt:
    """The prompt of a template with its slots filled, and where each named part sits."""
    pattern = data.templates[template].pattern
    place = place if "[PLACE]" in pattern else ""  # a template without the slot names none
    obj = obj if "[OBJECT]" in pattern else ""
    text, spans, seen = "", {}, {"[A]": 0, "[B]": 0}
    for piece in _pieces(pattern):
        start = len(text)
        if piece in ("[A]", "[B]"):
            text += io if piece == "[A]" else s
            seen[piece] += 1
            label = {("[A]", 1): "IO", ("[A]", 2): "ANSWER", ("[B]", 1): "S1", ("[B]", 2): "S2"}[piece, seen[piece]]
            spans[label] = (start, len(text))
        else:
            text += {"[PLACE]": place, "[OBJECT]": obj}.get(piece, piece)
    before = text[:spans["ANSWER"][0]].rstrip()
    spans["END"] = (before.rfind(" ") + 1, len(before))  # the word before the answer: "to"
    return IOIPrompt(text, io, s, template, place, obj, spans)


def sample_prompts(data: IOIData, n: int, rng: np.random.Generator, split: IOISplit | None = None,
                   part: str = "train") -> list[IOIPrompt]:
    """n prompts, BABA and ABBA alternately (balanced), IO and S two different names.

    With a split, part 'train' draws training templates with an IO allowed for the prompt's
    order (S any name); 'test' draws prompts that each hold something out: in turn a held-out
    template (any names), a held-out (name, order) as IO (training templates), or both."""
    everyone = tuple(data.names)
    if split is None:
        plans = [([t.index for t in data.templates], lambda order: everyone)]
    elif part == "train":
        plans = [(list(split.train_templates), split.training_io)]
    elif part == "test":
        plans = [(list(split.test_templates), lambda order: everyone), (list(split.train_templates), split.held_out_io),
                 (list(split.test_templates), split.held_out_io)]
    else:
        raise ValueError(f"part must be 'train' or 'test', not {part!r}")
    # each plan's templates and IO names per order, worked out once (not once a prompt)
    drawn = [{order: ([t for t in templates if data.templates[t].order == order], io_of(order))
              for order in ("BABA", "ABBA")} for templates, io_of in plans]
    prompts = []
    for i in range(n):
        order = "BABA" if i % 2 == 0 else "ABBA"
        choices, io_names = drawn[(i // 2) % len(plans)][order]  # a BABA and an ABBA prompt from each plan in turn
        template = int(choices[rng.integers(len(choices))])
        io = str(io_names[rng.integers(len(io_names))])
        s = str(everyone[rng.integers(len(everyone) - 1)])
        s = s if s != io else everyone[-1]  # uniform over the other 98 names
        prompts.append(fill(data, template, io, s, str(data.places[rng.integers(len(data.places))]),
                            str(data.objects[rng.integers(len(data.objects))])))
    return prompts


HELD_OUT_PROMPTS = 1000


def training_prompts(data: IOIData, split: IOISplit, n: int, seed: int = 0) -> list[IOIPrompt]:
    """The training inputs a decoder draws from: n prompts of the training part."""
    return sample_prompts(data, n, np.random.default_rng([seed, 4242, 0]), split, "train")


def held_out_prompts(data: IOIData, split: IOISplit, n: int = HELD_OUT_PROMPTS, seed: int = 0) -> list[IOIPrompt]:
    """The held-out prompts every reported figure uses (eval-probed ioi, eval-decoder, the card)."""
    return sample_prompts(data, n, np.random.default_rng([seed, 4242, 1]), split, "test")


SLOTS = {"[A]": "a", "[B]": "b", "[PLACE]": "place", "[OBJECT]": "obj"}


@lru_cache(maxsize=4)
def _matchers(data: IOIData) -> tuple[tuple[int, re.Pattern], ...]:
    """One loose pattern per template: a slot takes any text, and parse() checks it against the
    name, place and object lists. 60 small patterns compile in a few milliseconds, which matters
    because the app parses the query text on the GUI thread; with each slot the alternation of
    its list (_exact_pattern) all 60 took 130 ms."""
    return tuple((t.index, _template_pattern(t, {})) for t in data.templates)


@lru_cache(maxsize=256)
def _exact_pattern(data: IOIData, index: int) -> re.Pattern:
    """One template's pattern with each slot the alternation of its list (the grammar itself)."""
    words = {"a": data.names, "b": data.names, "place": data.places, "obj": data.objects}
    alternations = {key: "|".join(map(re.escape, sorted(w, key=len, reverse=True)))  # longest first
                    for key, w in words.items()}
    return _template_pattern(data.templates[index], alternations)


def _template_pattern(template, alternations: dict) -> re.Pattern:
    """A template as a pattern: each slot's first use captures (its alternation, else any text),
    later uses must repeat it."""
    regex, seen = "", set()
    for piece in _pieces(template.pattern):
        key = SLOTS.get(piece)
        if key is None:
            regex += re.escape(piece)
        elif key in seen:
            regex += f"(?P={key})"
        else:
            regex += f"(?P<{key}>{alternations.get(key, '.+?')})"
            seen.add(key)
    return re.compile(regex, re.DOTALL)


@lru_cache(maxsize=4)
def _vocab_sets(data: IOIData) -> dict[str, frozenset[str]]:
    return {"a": frozenset(data.names), "b": frozenset(data.names), "place": frozenset(data.places),
            "obj": frozenset(data.objects)}


def parse(data: IOIData, text: str) -> IOIPrompt | None:
    """The prompt `text` is, when it fits a template with IO and S each named as the template
    says (S twice, IO first in its clause and last, two different names); else None.

    The loose pattern matches every prompt the exact one does; when its split of the text puts
    something outside the lists in a slot (a name that contains a template's words could do
    that), the exact pattern of that template decides."""
    text = text.strip()
    sets = _vocab_sets(data)
    for index, matcher in _matchers(data):
        m = matcher.fullmatch(text)
        if m is None:
            continue
        if not all(value in sets[key] for key, value in m.groupdict().items() if value is not None):
            m = _exact_pattern(data, index).fullmatch(text)  # this template's only: a few ms
        if m and m.group("a") != m.group("b"):
            found = m.groupdict()
            return fill(data, index, found["a"], found["b"], found.get("place") or "", found.get("obj") or "")
    return None
