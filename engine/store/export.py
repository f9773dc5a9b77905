"""CSV export of a query result: one row per distinct sample, written atomically in UTF-8.

Cells that a spreadsheet would run as a formula (leading =, +, -, @, or tab / carriage return)
are prefixed with an apostrophe, so opening an export never executes anything.
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
           "query_position", "query_label", "model", "metric", "epsilon"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell) -> str:
    text = str(cell)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(result: QueryResult) -> str:
    fact_name = get_task(result.task).fact_name
    header = [fact_name if c == "fact" else c for c in COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for s in result.samples:
        row = [s.rank, f"{s.distance:.6f}", s.in_epsilon, s.text, s.marked(), s.compared_position,
               s.labels[s.compared_position], s.multiplicity, s.temperature, s.noise, s.fact, s.well_formed,
               result.site_short, result.site_id, result.query, result.query_position,
               result.query_labels[result.query_position], result.model, result.metric, result.epsilon]
        writer.writerow([neutralise(c) for c in row])
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
