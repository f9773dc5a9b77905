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
from pathlib import Path

from engine.errors import OutputError
from engine.query.types import QueryResult
from engine.store.safefiles import atomic_write_bytes
from engine.tasks import get_task

COLUMNS = ["rank", "distance", "in_epsilon", "sample", "marked_sample", "compared_position", "compared_label",
           "multiplicity", "temperature", "noise", "fact", "well_formed", "site", "site_hook", "query",
           "query_position", "query_label", "model", "metric", "epsilon", "seed", "candidates", "candidates_done",
           "schedule", "precision", "complete"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")


def neutralise(cell) -> str:
    """A text cell that no spreadsheet runs: formula starts get an apostrophe, NULs a visible mark."""
    text = str(cell)
    safe = "'" + text if text.startswith(_FORMULA_START) else text
    return safe.replace("\0", "\u2400")


def number(value: float, digits: int = 6) -> str:
    """A float to the digits it means (0.1, not 0.10000000149011612, for a float32 setting)."""
    return f"{value:.{digits}g}"


def csv_text(result: QueryResult) -> str:
    fact_name = get_task(result.task).fact_name
    header = [fact_name if c == "fact" else c for c in COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([neutralise(c) for c in header])
    run = [result.seed, result.candidates, result.candidates_done, neutralise(result.schedule),
           neutralise(result.precision), result.complete]
    for s in result.samples:
        row = [s.rank, f"{s.distance:.6f}", s.in_epsilon, neutralise(s.text), neutralise(s.marked()),
               s.compared_position, neutralise(s.labels[s.compared_position]), s.multiplicity,
               number(s.temperature), number(s.noise), neutralise(s.fact), s.well_formed, neutralise(result.site_short),
               neutralise(result.site_id), neutralise(result.query), result.query_position,
               neutralise(result.query_labels[result.query_position]), neutralise(result.model),
               neutralise(result.metric), number(result.epsilon), *run]
        writer.writerow(row)
    return buf.getvalue()


def write_csv(result: QueryResult, path: str | Path) -> Path:
    """Write the CSV; OutputError (and no file) when the path cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name such as {path / 'samples.csv'}")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    atomic_write_bytes(path, csv_text(result).encode("utf-8"))  # OutputError when it cannot be written
    return path
