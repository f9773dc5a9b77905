"""Whether Run (and Map this input) can go now, and the words that say so.

Every loaded model answers queries: where there is no decoder, or the chosen site is one the
decoder was not trained on, "auto" runs the local search (engine/search/). Only an explicit
"decoder" choice is refused there, before the click, with the reason and the way out.
Plain Python (no Qt): the window asks, these answer.
"""
from __future__ import annotations

SEARCH_WORDS = "'auto' or 'local search' runs the local search here instead"


def no_decoder(loaded) -> bool:
    """The loaded model (a LoadedModel) has no decoder at all."""
    return loaded is not None and not loaded.has_decoder


def cannot_run(loaded, loading: bool, sampler: str, site: str, untrained: bool) -> str:
    """Why Run would fail now, or '' when it can run. `loaded`: the LoadedModel or None;
    `untrained`: the decoder was not trained on `site` (known once the model has loaded)."""
    if loaded is None and not loading:
        return "No model is loaded: choose one in the Model box (the last one failed)"
    if loaded is not None and loaded.no_query:
        return f"Cannot run: {loaded.no_query}"
    if sampler != "decoder":
        return ""
    if no_decoder(loaded):
        return (f"Cannot run with the decoder: {loaded.name} has no decoder yet (File > Train decoder… trains "
                f"one); {SEARCH_WORDS}")
    if untrained:
        return (f"Cannot run with the decoder: the decoder was not trained on {site}; choose a site drawn solid "
                f"in the diagram (dashed nodes are sites it does not know), or {SEARCH_WORDS}")
    return ""


def cannot_map(loaded, sampler: str) -> str:
    """Why Map this input would fail now, or ''."""
    if loaded is None:
        return "Load a model first."
    if loaded.no_query:
        return f"Cannot map: {loaded.no_query}"
    if sampler == "decoder" and no_decoder(loaded):
        return f"Cannot map with the decoder: {loaded.name} has no decoder yet; {SEARCH_WORDS}"
    return ""


def model_note(loaded) -> str:
    """What the Model box adds to '<name> ready': how this model answers queries."""
    if loaded.no_query:
        return "; no decoder yet: the flow graph and sites work, Run needs a decoder"
    if not loaded.has_decoder:
        return ("; no decoder yet: the local search answers queries (train a decoder, File > Train decoder…, "
                "for the decoder's samples)")
    return ""


def target_note(loaded, untrained: bool, sampler: str, site: str) -> tuple[str, bool]:
    """The note after 'Invert <site> at position …', and whether it is an error (Run refused)."""
    if no_decoder(loaded):
        return ("no decoder yet", True) if sampler == "decoder" else ("by local search (no decoder yet)", False)
    if sampler == "search":
        return "by local search", False
    if not untrained:
        return "", False
    if sampler == "decoder":
        return f"the decoder was not trained on {site}", True
    return f"the decoder was not trained on {site}: the local search runs here", False


def changed_options(shown, now) -> list[str]:
    """The options (QueryOptions `now`) that differ from those the shown QueryResult ran with, by
    name. "auto" names no sampler change (it picks per site); a search has no schedule to change."""
    from engine.query.types import format_schedule

    search = shown.sampler == "search"
    pairs = (("candidates", shown.candidates, now.candidates), ("metric", shown.metric, now.metric),
             ("seed", shown.seed, now.seed),
             ("schedule", shown.schedule, shown.schedule if search else format_schedule(now.schedule)),
             ("sampler", shown.sampler, shown.sampler if now.sampler == "auto" else now.sampler))
    return [name for name, was, is_ in pairs if was != is_]
