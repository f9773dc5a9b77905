"""What the window asks the engine thread to do, and the result header it expects back.

Plain Python (no Qt, no torch): the engine worker, the fake engine of the tests and the
window all share these.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from engine.probed.sites import get_site
from engine.query.types import QueryOptions, QueryResult, sampler_for
from engine.query.types import result_header as engine_header
from engine.tasks import get_task

# Where a new query looks first, per task: the paper's showcase sites.


@dataclass
class QueryRequest:
    model_key: str  # the model folder the inverter was loaded from (str of ModelEntry.path)
    text: str  # the query as typed; run_query adds B/E
    site: str  # short name, e.g. 'x1.post'
    position: int  # index into the normalized query's tokens
    options: QueryOptions
    cancel: threading.Event = field(default_factory=threading.Event)


def result_header(inv, request: QueryRequest) -> QueryResult:
    """An empty QueryResult describing the request to a loaded model (an Inverter: its entry,
    its task with the model's own tokenizer, its precision); the accumulator fills in the samples.

    Raises the engine's user errors (TaskInputError, SiteError) for a bad query or site, the
    same ones run_query would raise.
    """
    task = inv.probed.task
    tokens = task.parse_query(request.text)
    position = task.resolve_position(tokens, request.position)
    site = get_site(inv.entry.probed, request.site)
    header = engine_header(inv.entry.name, task, tokens, position, site, request.options, inv.precision)
    if chosen_sampler(inv, site, request.options.sampler) == "search":  # the partial results read as the search's
        header.sampler, header.schedule = "search", ""
    return header


def chosen_sampler(inv, site, asked: str) -> str:
    """engine.query.run.choose_sampler's answer without its errors (run_query raises them)."""
    trained = getattr(inv, "has_decoder", True) and any(s.id == site.id for s in getattr(inv, "sites", []))
    return sampler_for(asked, trained)


def default_site(task_name: str) -> str:
    """The site a new model starts at: the task's showcase site."""
    return get_task(task_name).default_site


def default_position(task_name: str, labels: list[str]) -> int:
    """The task's showcase position in a query, or the last non-EOS position."""
    return get_task(task_name).default_position(labels)
