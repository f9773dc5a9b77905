"""CSV export of a query result: one row per distinct sample, written atomically in UTF-8.

By the book (RFC 4180, and OWASP's guidance on CSV injection): every field is quoted, so a CR,
LF, comma, semicolon or quote inside one never starts a row or a column, whatever separator the
spreadsheet assumes; a text cell a spreadsheet would run as a formula (leading =, +, -, @, tab,
CR or NUL) gets an apostrophe in front, and NULs become U+2400. Numbers are written to the
precision they mean. Each row also records how the samples were drawn (seed, candidates, how
many were done, schedule, precision, and whether the run was cancelled), so an export says
how to reproduce it.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from engine.errors import OutputError
from engine.query.types import QueryResult
from engine.store.safefiles import atomic_write_bytes
from engine.tasks import get_task

COLUMNS = ["rank", "distance", "in_epsilon", "sample", "marked_sample", "compared_position", "compared_label",
           "multiplicity", "temperature", "noise", "fact", "well_formed", "shares", "site", "site_hook", "query",
           "query_position", "query_label", "model", "metric", "epsilon", "seed", "candidates", "candidates_done",
           "schedule", "precision", "complete", "compared_at", "sampler", "sampler_settings", "edits"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(cell) -> str:
    """A text cell that no spreadsheet runs: formula starts get an apostrophe, NULs a visible mark."""
    text = str(cell)
    safe = "'" + text if text.startswith(_FORMULA_START) else text
    return safe.replace("\0", "\u2400")


def number(value: float, digits: int = 6) -> str:
    """A float to the digits it means (0.1, not 0.10000000149011612, for a float32 setting)."""
    return f"{value:.{digits}g}"


def optional(value: float) -> str:
    """A number, or an empty cell where it does not apply (a search sample has no temperature)."""
    return number(value) if math.isfinite(value) else ""


def compared_at(result: QueryResult) -> str:
    """Where samples were compared: every position (the paper's rule) or the query's label only."""
    return f"positions labelled {result.query_labels[result.query_position]!r}" if result.same_label \
        else "every position"


def shared_names(result: QueryResult, sample) -> str:
    """The query's features this sample has too ('count; length'): the CSV's `shares` column."""
    return "; ".join(f"{name}={value}" for i, (name, value) in enumerate(result.features) if sample.agrees >> i & 1)


def csv_text(result: QueryResult) -> str:
    fact_name = get_task(result.task).fact_name
    header = [fact_name if c == "fact" else c for c in COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([neutralise(c) for c in header])
    run = [result.seed, result.candidates, result.candidates_done, neutralise(result.schedule),
           neutralise(result.precision), result.complete, compared_at(result), neutralise(result.sampler),
           neutralise(result.sampler_settings)]
    for s in result.samples:
        row = [s.rank, f"{s.distance:.6f}", s.in_epsilon, neutralise(s.text), neutralise(s.marked()),
               s.compared_position, neutralise(s.labels[s.compared_position]), s.multiplicity,
               optional(s.temperature), optional(s.noise), neutralise(s.fact), s.well_formed,
               neutralise(shared_names(result, s)), neutralise(result.site_short),
               neutralise(result.site_id), neutralise(result.query), result.query_position,
               neutralise(result.query_labels[result.query_position]), neutralise(result.model),
               neutralise(result.metric), number(result.epsilon), *run, s.edits if s.edits >= 0 else ""]
        writer.writerow(row)
    return buf.getvalue()


def result_dict(result: QueryResult) -> dict:
    """A result as JSON-ready data: the query, how it was drawn, the preimage summary
    (engine/explain/summary.py; for the search's samples the flip test, engine/explain/flips.py)
    and every distinct sample with the features it shares."""
    from engine.explain.flips import flip_test
    from engine.explain.summary import summarize

    def finite(x: float):
        return x if math.isfinite(x) else None  # JSON has no NaN: not compared

    return {
        "model": result.model, "task": result.task, "site": result.site_short, "site_hook": result.site_id,
        "query": result.query, "query_tokens": result.query_tokens, "query_position": result.query_position,
        "query_label": result.query_labels[result.query_position], "metric": result.metric,
        "epsilon": result.epsilon, "seed": result.seed, "candidates": result.candidates,
        "candidates_done": result.candidates_done, "schedule": result.schedule, "precision": result.precision,
        "complete": result.complete, "compared_at": compared_at(result),
        "sampler": result.sampler, "sampler_settings": result.sampler_settings,
        "summary": summarize(result).to_dict(),
        **({"flip_test": flip_test(result).to_dict()} if result.sampler == "search" else {}),
        "samples": [{"rank": s.rank, "text": s.text, "tokens": s.tokens, "multiplicity": s.multiplicity,
                     "distance": finite(s.distance), "in_epsilon": s.in_epsilon,
                     "compared_position": s.compared_position,
                     "compared_label": s.labels[s.compared_position], "fact": s.fact, "well_formed": s.well_formed,
                     "temperature": finite(s.temperature), "noise": finite(s.noise),
                     "edits": s.edits if s.edits >= 0 else None,
                     "shares": [name for i, (name, _) in enumerate(result.features) if s.agrees >> i & 1],
                     "position_distances": [finite(d) for d in s.position_distances]} for s in result.samples],
    }


def _checked_path(path: Path, example: str) -> Path:
    try:
        folder, parent = path.is_dir(), path.parent.is_dir()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise OutputError(f"cannot write {str(path)[:300]}: {e.strerror or e}") from None
    if folder:
        raise OutputError(f"{path} is a folder; give a file name such as {path / example}")
    if not parent:
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    return path


def write_csv(result: QueryResult, path: str | Path) -> Path:
    """Write the CSV; OutputError (and no file) when the path cannot be written."""
    path = _checked_path(Path(path), "samples.csv")
    atomic_write_bytes(path, csv_text(result).encode("utf-8"))  # OutputError when it cannot be written
    return path


def write_json(result: QueryResult, path: str | Path) -> Path:
    """Write `result_dict` as JSON; OutputError (and no file) when the path cannot be written."""
    path = _checked_path(Path(path), "result.json")
    atomic_write_bytes(path, (json.dumps(result_dict(result), indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


MAP_COLUMNS = ["site", "site_hook", "position", "label", "candidates", "in_epsilon", "share_in_epsilon",
               "feature", "value", "feature_share", "feature_base_rate", "verdict", "reading",
               "distance_q10", "distance_q50", "distance_q90", "model", "query", "metric", "epsilon", "seed"]


def map_csv_text(m) -> str:
    """The information map (engine/explain/sweep.py) as CSV, a row per node, by the same book."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(MAP_COLUMNS)
    o = m.options
    for r in m.rows:
        top = r.top
        writer.writerow([neutralise(r.site), neutralise(r.site_id), r.position, neutralise(r.label), r.candidates,
                         r.in_epsilon, number(r.share, 4), neutralise(top.name if top else ""),
                         neutralise(top.query_value if top else ""), number(top.share, 4) if top else "",
                         number(top.base_rate, 4) if top else "", neutralise(top.verdict if top else ""),
                         neutralise(r.reading()), *(number(q, 4) for q in r.quantiles), neutralise(m.model),
                         neutralise(m.query), neutralise(o.metric), number(o.epsilon), o.seed])
    return buf.getvalue()


def map_dict(m) -> dict:
    from dataclasses import asdict

    from engine.query.types import format_schedule

    o = m.options
    return {"model": m.model, "query": m.query, "query_tokens": m.query_tokens, "metric": o.metric,
            "epsilon": o.epsilon, "seed": o.seed, "candidates_per_node": o.candidates,
            "schedule": format_schedule(o.schedule), "complete": m.complete, "seconds": m.seconds,
            "nodes": [{**asdict(r), "share_in_epsilon": r.share, "reading": r.reading()} for r in m.rows]}


def write_map_csv(m, path: str | Path) -> Path:
    path = _checked_path(Path(path), "map.csv")
    atomic_write_bytes(path, map_csv_text(m).encode("utf-8"))
    return path


def write_map_json(m, path: str | Path) -> Path:
    path = _checked_path(Path(path), "map.json")
    atomic_write_bytes(path, (json.dumps(map_dict(m), indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return path
