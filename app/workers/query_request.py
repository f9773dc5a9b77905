"""What the window asks the engine for a query, and where a new query looks first.

Plain Python (no Qt, no torch).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.query.types import QueryOptions
from engine.tasks import get_task

# Where a new query looks first, per task: the paper's showcase sites.


@dataclass
class QueryRequest:
    model_key: str  # the model folder the inverter was loaded from (str of ModelEntry.path)
    text: str  # the query as typed; run_query adds B/E
    site: str  # short name, e.g. 'x1.post'
    position: int  # index into the normalized query's tokens
    options: QueryOptions


def default_site(task_name: str) -> str:
    """The site a new model starts at: the task's showcase site."""
    return get_task(task_name).default_site


def default_position(task_name: str, labels: list[str]) -> int:
    """The task's showcase position in a query, or the last non-EOS position."""
    return get_task(task_name).default_position(labels)
