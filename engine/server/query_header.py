"""The empty result a query's samples will fill: sent before the first chunk, so the window can
rank chunks as they arrive."""
from __future__ import annotations

from engine.probed.sites import get_site
from engine.query.types import QueryResult, sampler_for
from engine.query.types import result_header as engine_header


def result_header(inv, text: str, site_short: str, position: int, options) -> QueryResult:
    """An empty QueryResult describing a query to a loaded model (an Inverter). Raises the engine's
    user errors (TaskInputError, SiteError) for a bad query or site, as run_query would."""
    task = inv.probed.task
    tokens = task.parse_query(text)
    position = task.resolve_position(tokens, position)
    site = get_site(inv.entry.probed, site_short)
    header = engine_header(inv.entry.name, task, tokens, position, site, options, inv.precision)
    trained = getattr(inv, "has_decoder", True) and any(s.id == site.id for s in getattr(inv, "sites", []))
    if sampler_for(options.sampler, trained) == "search":  # the partial results read as the search's
        header.sampler, header.schedule = "search", ""
    return header
