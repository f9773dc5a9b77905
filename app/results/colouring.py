"""The prob-diff colouring of the shown result, on demand: the rows on screen first, then the rest.

The window's queries run with colour=False (a counting query: 0.25 s instead of 0.65 s on 2
cores), so a result arrives plain. Once it is shown and no query runs, this controller asks the
engine thread for "colour" jobs (app/workers/job_request.py, engine/query/colour.py) of PART
samples each: the plain rows on screen (and AHEAD_ROWS below) first, then every other sample in
rank order, one job after the other, so that a map, a patching run or a new query queued on the
engine thread waits for one part at most. Each answer is written into the samples' `prob_diff`
and repainted (dataChanged). Scrolling, a histogram filter or a new epsilon re-prioritise: when
rows on screen are still plain and the running job was not started for them, a new job
supersedes it (one job of a kind runs at a time). A sample without colours is drawn plain.

Once the shown result is whole, the runs pinned in Compare that the loaded model made and that
still have plain samples (a run replaced while it was being coloured) are coloured the same way.

The colours are written into the samples' own prob_diff lists, in place: the copies a new
epsilon makes (QueryResult.with_epsilon) share those lists, so the history's result, the one on
screen and a result pinned in Compare all keep them. A new query, a model change or a result of
another query cancels the job. At a text vocabulary the engine leaves the samples beyond
epsilon plain, as run_query does (engine/query/run.py COLOUR_NEAR_ONLY_VOCAB); they are not asked
for again until epsilon changes. A local search's samples (QueryResult.sampler "search") are never
coloured: the colours are the decoder's, and a model without one has none to give.
"""
from __future__ import annotations

import logging
from itertools import islice

from PySide6.QtCore import QEvent, QObject, QTimer, Signal

from app.workers.job_request import JobRequest

log = logging.getLogger(__name__)

COLOUR = "colour"  # the job kind
SETTLE_MS = 30  # scroll and reset events within this time make one new plan
AHEAD_ROWS = 24  # rows below the visible ones that are coloured with them (the next scroll step)
PART = 64  # samples per colour job (about 40 ms of the counting decoder on a busy 2-core CPU)


def same_samples(a, b) -> bool:
    """Whether two results list the same samples in the same order (b a re-flagged copy of a):
    with_epsilon's copies share each sample's token list, so identity answers it exactly."""
    if a is b:
        return True
    if a is None or b is None or len(a.samples) != len(b.samples):
        return False
    return all(x.tokens is y.tokens for x, y in zip(a.samples, b.samples))


def query_key(result) -> tuple:
    """What colours depend on (with epsilon, which decides which samples a text model colours)."""
    return result.model, tuple(result.query_tokens), result.site_id, result.query_position, result.epsilon


class ColourController(QObject):
    """Colours the window's shown result (window.results) through window.engine's colour jobs."""

    coloured = Signal(int)  # samples whose colours arrived in the latest part
    idle = Signal()  # nothing left to colour, shown or pinned (or no job can run)

    def __init__(self, window):
        super().__init__(window)
        self.engine = window.engine
        self.results = window.results
        self.compare = getattr(window, "compare", None)
        self.session = window.session  # the shown result's model folder: session.shown_model_key
        self.waiting_export = None  # a paper JSON export waiting for colours (app/results/export.py)
        self._request: JobRequest | None = None
        self._first: frozenset[int] = frozenset()  # the sample indices the running job colours
        self._plain: dict[tuple, set] = {}  # query_key -> samples the engine left plain (text vocab, beyond epsilon)
        self._last_done: list[int] | None = None  # the order of the last job that ran to its end
        self._held = False  # another model was chosen: the old result waits for a scroll or a new result
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.schedule)
        table = self.results.table
        table.verticalScrollBar().valueChanged.connect(self._on_scroll)
        table.viewport().installEventFilter(self)
        self.results.table_model.modelReset.connect(self._on_reset)
        self.engine.modelLoading.connect(self._on_model_change)
        self.engine.jobItem.connect(self._on_item)
        self.engine.jobFinished.connect(self._on_finished)
        self.engine.jobFailed.connect(self._on_failed)

    # ---- what to colour ------------------------------------------------------------------
    def available(self) -> bool:
        """Whether the engine colours on demand (else the window asks run_query to colour)."""
        return self.engine.can_run_job(COLOUR)

    def busy(self) -> bool:
        return self._request is not None

    def reset(self) -> None:
        """A new query or another model: the running job is cancelled and forgotten."""
        self._timer.stop()
        if self._request is not None:
            self.engine.cancel_job(COLOUR)
            self._request = None
        self._first = frozenset()
        self._last_done = None

    def visible_samples(self) -> list[int]:
        """result.samples indices of the rows on screen (and AHEAD_ROWS below), top first."""
        table, model = self.results.table, self.results.table_model
        n = model.rowCount()
        if n == 0:
            return []
        first = max(table.rowAt(0), 0)
        last = table.rowAt(max(table.viewport().height() - 1, 0))
        last = n - 1 if last < 0 else last
        return [model.sample_index(r) for r in range(first, min(last + AHEAD_ROWS, n - 1) + 1)]

    def missing(self, result, indices, most: int | None = None) -> list[int]:
        """Of these samples, the ones (the first `most`) with no colours yet that the engine has not left
        plain. None of a local search's: prob-diff colours need the decoder, and the search has none to ask."""
        if getattr(result, "sampler", "decoder") == "search":
            return []
        samples, plain = result.samples, self._plain.get(query_key(result), ())
        wanted = (i for i in indices if not samples[i].prob_diff and tuple(samples[i].tokens) not in plain)
        return list(islice(wanted, most))

    def visible_missing(self) -> list[int]:
        result = self.results.result()
        return [] if result is None else self.missing(result, self.visible_samples())

    def schedule(self) -> None:
        """Plan the colouring of the shown result: nothing while a query runs or a model loads (the
        engine thread is busy with it), else the plain rows on screen first, then the rest, then
        the runs pinned in Compare."""
        self._timer.stop()
        result = self.results.result()
        if result is None or self._held or self.engine.running or self.engine.loading or not self.available():
            if result is None:
                self.reset()
            return
        pinned = self._pinned()
        keep = {query_key(r) for r in (result, *pinned)}  # plain sets of results no longer shown or pinned go
        self._plain = {k: v for k, v in self._plain.items() if k in keep}
        visible = self.visible_samples()
        first = self.missing(result, visible)
        if self._running_for(result) and self._first.issuperset(first[:PART]):
            return  # the running job does these (or as many of them as one part holds)
        seen = set(visible)
        order = first[:PART]  # one part per job: a map, a patching run or a query never waits behind the rest
        if len(order) < PART:  # then the others, in rank order
            order += self.missing(result, (i for i in range(len(result.samples)) if i not in seen), PART - len(order))
        key = self.session.shown_model_key
        if not order or order == self._last_done:  # the shown result is done: runs pinned in Compare next
            for other in pinned:
                if self._running_for(other):
                    return  # a pinned result's part is being coloured
                order = self.missing(other, range(len(other.samples)), PART)  # in rank order
                if order and order != self._last_done:
                    result = other
                    break
            else:  # everything coloured (or the engine had nothing more to give)
                if self._request is not None:
                    self.reset()
                self.idle.emit()
                return
        self._request = JobRequest(COLOUR, key, {"result": result, "order": order, "part": PART})
        self._first = frozenset(order)
        self.engine.run_job(self._request)  # cancels the colour job that ran before

    def _pinned(self) -> list:
        """The results pinned in Compare that the loaded model can colour:
        the shown result's model (another would need loading, and the engine thread is the
        shown model's). A run replaced while it was being coloured comes back part plain."""
        if self.compare is None or self.results.result() is None:
            return []
        key = self.session.shown_model_key
        return [side.result() for entry, side in zip(self.compare.entries, self.compare.sides)
                if entry is not None and entry.model_key == key and side.result() is not None]

    def _running_for(self, result) -> bool:
        return self._request is not None and same_samples(self._request.params["result"], result)

    def _soon(self, *_args, delay: int = SETTLE_MS) -> None:
        if self.results.result() is not None and not (self._timer.isActive() and delay >= self._timer.interval()):
            self._timer.start(delay)

    def _on_model_change(self, _name: str) -> None:
        """Another model: its load has the engine thread; the shown result (the old model's) is
        coloured further only when it is scrolled or another result is shown."""
        self.reset()
        self._held = True

    def _on_scroll(self, *_args) -> None:
        self._held = False
        self._soon()

    def _on_reset(self) -> None:
        """The table shows another result (or the same re-flagged, or filtered)."""
        self._held = False
        if self.results.result() is None:
            self.reset()  # a new query clears the table first: the engine thread must be free for it
        else:
            self._soon(delay=0)  # once the view has laid the rows out

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Resize:
            self._soon()  # more rows on screen
        return False

    # ---- answers ---------------------------------------------------------------------------
    def _on_item(self, request, item: dict, done: int, total: int) -> None:
        if request is not self._request:
            return
        source = request.params["result"]
        shown = self.results.result()
        aligned = shown is not None and same_samples(source, shown)
        changed = []
        for i, values in item.items():
            if not values:  # left plain by the engine's rule
                self._plain.setdefault(query_key(source), set()).add(tuple(source.samples[i].tokens))
                continue
            for result in (source, shown) if aligned else (source,):
                diffs = result.samples[i].prob_diff
                if not diffs:
                    diffs.extend(values)  # in place: every copy of this sample shares the list
            changed.append(i)
        if aligned and changed:
            self.results.table_model.samples_changed(changed)
        if self.compare is not None and changed:
            for side in self.compare.sides:  # a pinned copy of this result shares the lists
                side.table.viewport().update()
        self.coloured.emit(len(changed))

    def _on_finished(self, request, done) -> None:
        if request is not self._request:
            return
        self._request, self._first = None, frozenset()
        if done == len(request.params["order"]):
            self._last_done = request.params["order"]
        self.schedule()  # the next part (what is on screen then comes first), or idle

    def _on_failed(self, request, message: str) -> None:
        if request is not self._request:
            return
        self._request, self._first = None, frozenset()
        log.warning("token colouring failed: %s", message)
        status = getattr(self.parent(), "statusBar", None)
        if status is not None:
            status().showMessage(f"Token colours could not be computed: {message}", 15000)
        self.idle.emit()
