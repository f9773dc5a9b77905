"""Ranked samples as a Qt table model: one row per distinct sample, in rank order.

The model only indexes into the QueryResult's list (no per-row Qt objects), so streaming
updates and thousands of rows stay cheap; the delegates paint the sample and the bar.
A distance range (from a histogram click) filters the rows without touching the result.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from app.results.distance_text import distance_text
from engine.tasks import TASKS

SAMPLE_ROLE = int(Qt.UserRole.value) + 1  # the row's SampleResult

RANK, MULT, SAMPLE, DISTANCE, FACT = range(5)
HEADERS = ["#", "×", "Sample (compared token in parentheses)", "Distance", "Fact"]


def fact_header(task_name: str) -> str:
    """The fact column's heading, as the task names its per-sample fact."""
    task = TASKS.get(task_name)
    return task.fact_header if task is not None else "Fact"


class ResultsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._samples: list = []
        self._rows = np.zeros(0, dtype=np.int64)  # indices into _samples that are shown
        self._distances = np.zeros(0)
        self._in_eps = np.zeros(0, dtype=bool)
        self._range: tuple[float, float] | None = None
        self._eps_rows = 0
        self._fact_header = "Fact"
        self._search = False  # a local search's result: the × column counts each sample's edits instead

    # ---- content ------------------------------------------------------------------------
    def set_result(self, result) -> None:
        self.beginResetModel()
        self._samples = list(result.samples) if result is not None else []
        self._distances = np.array([s.distance for s in self._samples], dtype=float)
        # the result's own epsilon flags, as an array (in_epsilon is distance <= epsilon)
        eps = getattr(result, "epsilon", 0.0)
        self._in_eps = self._distances <= eps if result is not None else np.zeros(0, dtype=bool)
        self._fact_header = fact_header(getattr(result, "task", ""))
        self._search = getattr(result, "sampler", "decoder") == "search"
        self._apply_range()
        self.endResetModel()

    def set_distance_range(self, lo: float | None, hi: float | None = None) -> None:
        """Show only samples with lo <= D < hi; lo None shows every sample."""
        self.beginResetModel()
        self._range = None if lo is None else (lo, math.inf if hi is None else hi)
        self._apply_range()
        self.endResetModel()

    def distance_range(self) -> tuple[float, float] | None:
        return self._range

    def _apply_range(self) -> None:
        if self._range is None:
            self._rows = np.arange(len(self._samples))
        else:
            lo, hi = self._range
            self._rows = np.flatnonzero((self._distances >= lo) & (self._distances < hi))
        flags = self._in_eps[self._rows]
        self._eps_rows = int(np.argmin(flags)) if not flags.all() else len(flags)

    def sample(self, row: int):
        return self._samples[int(self._rows[row])]

    def sample_index(self, row: int) -> int:
        """The index in result.samples of a shown row."""
        return int(self._rows[row])

    def samples_changed(self, indices) -> None:
        """Repaint the shown rows of these samples (result.samples indices): their colours arrived."""
        rows = np.flatnonzero(np.isin(self._rows, np.fromiter(indices, dtype=np.int64)))
        if len(rows):
            self.dataChanged.emit(self.index(int(rows[0]), SAMPLE), self.index(int(rows[-1]), SAMPLE))

    def in_epsilon_rows(self) -> int:
        """Shown rows within epsilon; they come first because rows are ranked by distance."""
        return self._eps_rows

    def distances(self) -> np.ndarray:
        """Distances of every sample of the result (not only the shown rows)."""
        return self._distances

    def total_samples(self) -> int:
        return len(self._samples)

    # ---- QAbstractTableModel ----------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            if section == MULT and self._search:
                return "edits"
            return self._fact_header if section == FACT else HEADERS[section]
        if orientation == Qt.Horizontal and role == Qt.ToolTipRole:
            if section == MULT and self._search:
                return ("Tokens changed from the query (replaced, inserted or deleted); the search draws each "
                        "sample once")
            return ["Rank by distance", "How many candidates produced this sample",
                    "The sample; token backgrounds: p(token | z_q) - p(token | z_BOS), blue positive, red "
                    "negative. Hover a token for its distance.",
                    "D = min over positions of the distance to the query activation (bar: D / 0.5)",
                    "The task fact of the sample"][section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        # called a few hundred times per repaint: plain int roles, no enum arithmetic on the hot path
        role = int(role)
        if role not in _ROLES_ANSWERED or not index.isValid():
            return None
        s = self._samples[int(self._rows[index.row()])]
        col = index.column()
        if role == _SAMPLE:
            return s
        if role == _DISPLAY:
            if col == RANK:
                return str(s.rank)
            if col == MULT:
                return mult_text(s)
            if col == SAMPLE:
                return s.marked()
            if col == DISTANCE:
                return distance_text(s.distance)
            return s.fact
        if role == _ALIGN:
            return _RIGHT if col in (RANK, MULT) else _LEFT
        if col != SAMPLE:  # tooltip
            form = "well formed" if s.well_formed else "malformed (struck through)"
            fact = f"{self._fact_header}: {s.fact}\n" if col == FACT and s.fact else ""  # the whole of an elided fact
            return (f"{fact}rank {s.rank}, {s.multiplicity} candidate(s), D = {s.distance:.4g} at position "
                    f"{s.compared_position}\n{how_found(s)}; {form}")
        return None


def mult_text(sample) -> str:
    """The × column: how many candidates drew the sample, or for a local search's, its edits."""
    return str(sample.edits) if sample.edits >= 0 else f"×{sample.multiplicity}"


def edits_text(sample) -> str:
    """'2 edits' for a local-search sample (tokens changed from the query), '' for a decoder's."""
    return f"{sample.edits} edit{'s' * (sample.edits != 1)}" if sample.edits >= 0 else ""


def how_found(sample) -> str:
    if sample.edits >= 0:
        return f"found by the local search, {edits_text(sample)} from the query"
    return f"sampled at temperature {sample.temperature:g}, noise {sample.noise:g}"


_DISPLAY, _ALIGN, _TOOLTIP, _SAMPLE = (int(Qt.DisplayRole.value), int(Qt.TextAlignmentRole.value),
                                       int(Qt.ToolTipRole.value), int(SAMPLE_ROLE))
_ROLES_ANSWERED = frozenset((_DISPLAY, _ALIGN, _TOOLTIP, _SAMPLE))
_RIGHT = int((Qt.AlignRight | Qt.AlignVCenter).value)
_LEFT = int((Qt.AlignLeft | Qt.AlignVCenter).value)
