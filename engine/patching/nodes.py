"""The nodes a patch replaces: one site of the catalogue (engine/probed/sites.py) at one position.

A node is written `SITE@POSITION`: `a1.0@:`, `x3.post@END`, `m0@7`. The site is any short name,
hook name or id the catalogue knows, kept under its flow-graph name (x{L+1}.pre is x{L}.post:
patching either is patching the same vector); the position is an index or a label of the clean
input (`:`, `A1`, `END`). No torch here.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.probed.sites import canonical_site, flow_sites, get_site, is_parallel
from engine.tasks.base import TaskInputError

if TYPE_CHECKING:
    from engine.probed.config import ProbedConfig
    from engine.tasks.base import Task


@dataclass(frozen=True)
class Node:
    site: str  # flow-graph short name: x0.pre, a1.0, x0.mid, m1, attn0, x1.post (never x1.pre)
    position: int

    @property
    def label(self) -> str:
        return f"{self.site}@{self.position}"


# A comma starts a new node only when a site name and '@' follow it: IOI prompts have a ','
# token, so `x1.post@,,a0.0@3` is the node at ',' and a0.0 at 3.
_NODE_START = re.compile(r",(?=\s*[A-Za-z][\w.\[\]]*@)")


def parse_node(config, task, ids, text: str) -> Node:
    """`SITE@POSITION` of the input `ids` -> Node; SiteError or TaskInputError (one line each,
    naming what is allowed) for an unknown site or position."""
    text = text.strip()
    site_name, at, position = text.partition("@")
    if not at or not site_name.strip() or not position:
        raise TaskInputError(f"expected a node as SITE@POSITION, e.g. a1.0@3 or x1.post@{_example_label(task, ids)}, "
                             f"got {text[:60]!r}")
    site = get_site(config, site_name.strip())  # SiteError listing the sites
    return Node(canonical_site(site.short), task.resolve_position(ids, position))


def parse_nodes(config: ProbedConfig, task: Task, ids: Sequence[int], text: str) -> list[Node]:
    """Comma-separated `SITE@POSITION` nodes of the input `ids` (token ids), in the order given
    (each once); a position is an index or one of the input's labels."""
    parts = [p for p in _NODE_START.split(text) if p.strip()]
    if not parts:
        raise TaskInputError("expected nodes as SITE@POSITION separated by commas, e.g. a0.0@3,x1.post@:")
    return list(dict.fromkeys(parse_node(config, task, ids, p) for p in parts))


def all_nodes(config, answer_position: int, first: int = 1) -> list[Node]:
    """Every node of the flow graph (x0.pre, each head, x.mid, m, x.post per layer; no x.mid in a
    parallel-attention model) at every position from `first` (1: the BOS at 0 is the same in both
    inputs) to the answer position: a causal model's later positions cannot change the answer. In
    forward order, position by position within each site."""
    sites = flow_sites(config.n_layers, config.n_heads, is_parallel(config))
    return [Node(site.short, p) for site in sites for p in range(first, answer_position + 1)]


def _example_label(task, ids) -> str:
    try:
        return task.position_labels(ids)[task.answer_position(ids)]
    except (IndexError, TaskInputError):
        return "3"
