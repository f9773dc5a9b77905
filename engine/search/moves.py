"""The search's five token moves, on plain lists of token ids.

A chain is an input (BOS first, as the model reads it) with its `anchor`, the place of the token
whose activation is compared (the query position, moved along by inserts and deletes), and each
token's `origin`: the query place it came from, -1 for an inserted token. Edits stay at or before
the anchor: in a causal model a later token cannot move the anchor's activation. Origins carry the
user's "keep these tokens": a kept place is never replaced, deleted, swapped or renamed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MOVES = ("replace", "insert", "delete", "swap", "rename")
NEEDS_TOKEN = frozenset({"replace", "insert", "rename"})


@dataclass
class Chain:
    tokens: list[int]
    anchor: int  # place of the compared token
    origin: list[int]  # per token: its query place, -1 when inserted
    distance: float = 0.0
    idle: int = 0  # steps since the chain last moved
    # re-running from a cached prefix (engine/search/prefix.py): the input's own PrefixState once
    # run, and for a proposal its parent's state and the first place that differs from the parent
    state: object = None
    parent: object = None
    start: int = 0


@dataclass(frozen=True)
class Edit:
    move: str  # one of MOVES
    at: int  # the place edited (swap: the first place; rename: the first occurrence of the renamed token)
    other: int = -1  # swap's second place


@dataclass
class Rules:
    """What a chain may touch: editable tokens, and how long an input may grow."""

    special: frozenset[int]  # ids never edited nor written (BOS, EOS, PAD, a decoder's own ids)
    keep: frozenset[int] = field(default_factory=frozenset)  # query places never changed
    max_length: int = 1 << 30

    def editable(self, chain: Chain) -> list[int]:
        """Places 1..anchor whose token may change."""
        return [j for j in range(1, chain.anchor + 1)
                if chain.tokens[j] not in self.special and chain.origin[j] not in self.keep]


def plan(chain: Chain, rules: Rules, rng: np.random.Generator) -> Edit | None:
    """A random feasible edit of the chain (None when nothing may change)."""
    places = rules.editable(chain)
    if not places:
        return None
    feasible = ["replace", "rename"]
    if len(chain.tokens) < rules.max_length:
        feasible.append("insert")
    deletable = [j for j in places if j != chain.anchor]
    if deletable:
        feasible.append("delete")
    if len({chain.tokens[j] for j in places}) > 1:
        feasible.append("swap")
    move = feasible[rng.integers(len(feasible))]
    if move == "delete":
        return Edit(move, int(rng.choice(deletable)))
    if move == "insert":  # before any editable place, the anchor's own place included
        return Edit(move, int(rng.choice(places)))
    if move == "swap":
        i = int(rng.choice(places))
        others = [j for j in places if chain.tokens[j] != chain.tokens[i]]
        j = int(rng.choice(others))
        return Edit(move, min(i, j), max(i, j))
    j = int(rng.choice(places))
    if move == "rename":
        value = chain.tokens[j]
        occurrences = [i for i, t in enumerate(chain.tokens) if t == value]
        if any(chain.origin[i] in rules.keep for i in occurrences):
            return Edit("replace", j)  # a kept occurrence: change this place alone
        return Edit(move, occurrences[0])
    return Edit(move, j)


def apply(chain: Chain, edit: Edit, token: int | None = None) -> Chain:
    """The chain after an edit (a new Chain; the old one is untouched). `token`: the new token of
    replace, insert and rename."""
    tokens, origin, anchor = list(chain.tokens), list(chain.origin), chain.anchor
    if edit.move == "replace":
        tokens[edit.at] = token
    elif edit.move == "insert":
        tokens.insert(edit.at, token)
        origin.insert(edit.at, -1)
        anchor += 1
    elif edit.move == "delete":
        del tokens[edit.at], origin[edit.at]
        anchor -= 1
    elif edit.move == "swap":
        tokens[edit.at], tokens[edit.other] = tokens[edit.other], tokens[edit.at]
    elif edit.move == "rename":  # every occurrence, after the anchor too: an IOI answer follows its IO
        value = tokens[edit.at]
        tokens = [token if t == value else t for t in tokens]
    else:
        raise ValueError(f"unknown move {edit.move!r}; moves: {', '.join(MOVES)}")
    return Chain(tokens, anchor, origin, chain.distance, parent=chain.state, start=edit.at)
