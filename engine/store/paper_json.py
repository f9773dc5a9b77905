"""The InversionView paper's web viewer files ("cached generation" JSON), written and read.

The paper's code (github.com/huangxt39/InversionView) caches one JSON file per (query input,
site, position, temperature, metric) for its Streamlit viewer. `decoder/cache_generation.py`
writes it and `webAPP/InversionView.py` with `webAPP/utils.py` read it. One file is an object:

    query_input     list[str]   the query's token strings, BOS first
    query_position  int         the index (in query_input) of the query activation, >= 0
    probed_act      str         the site's hook name; a head is blocks.L.attn.hook_result.H
    attn_weights    list[float] a head site's attention row at the query position, else []
    temperature     float       the sampling temperature; 0.0 for the "Auto" schedule
    metric          str         "dist" (normalised Euclidean) or "sim" (cosine *similarity*)
    generation      list of [tokens: list[str], prob_diff: list[float], metric_values:
                    list[float], best_index: int, best_value: float], one per sample, sorted
                    best first (ascending dist, descending sim)

Every sampled candidate is its own entry, duplicates included; pad tokens are left out, BOS
and EOS stay. Positions that are not compared hold 1000.0 (dist) or -1.0 (sim), the paper's
fill for EOS and PAD. The viewer finds a file by its name,
`{probed_act}-{query_position}-{temperature or Auto}-{metric}.json` (`paper_file_name`).

Our `QueryResult` keeps each distinct sample once, with its multiplicity, so an export lists a
sample `multiplicity` times in a row and an import merges identical token sequences back into
one sample. NaN (not compared; BOS in our queries) is written as the paper's fill value and
read back as NaN. Our results hold no attention weights, so `attn_weights` is always []: the
viewer then shows a head site's attention row empty, as it does for every other site. What
the format has no place for (model, epsilon, seed, each sample's temperature and noise) is not
written; an import leaves those unknown (empty text, NaN).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from engine.errors import OutputError, StoreError
from engine.probed.sites import make_site, parse_short
from engine.query.types import QueryResult, SampleResult, parse_schedule
from engine.store.json_scan import nesting
from engine.store.safefiles import atomic_write_bytes
from engine.tasks import TASKS, get_task

PAPER_KEYS = ("query_input", "query_position", "probed_act", "attn_weights", "temperature", "metric", "generation")
METRIC_NAMES = {"euclidean": "dist", "cosine": "sim"}  # ours -> the paper's
OUR_METRICS = {v: k for k, v in METRIC_NAMES.items()}
NOT_COMPARED = {"dist": 1e3, "sim": -1.0}  # the paper's masked_fill_ values for EOS and PAD
AUTO = 0.0  # the temperature the paper writes for its "Auto" schedule (file name: "Auto")
DIGITS = 6  # decimals written (the paper rounds to 3; 6 keeps our distances' order)

MAX_FILE_BYTES = 64 * 2**20  # a 1,024-sample counting file is about 1 MB
MAX_DEPTH = 8  # the format nests 4 deep: object > generation > entry > token list
MAX_TOKENS = 100_000  # per sequence
MAX_ENTRIES = 10 * MAX_TOKENS  # samples in `generation`
MAX_CONTAINERS = 4 * MAX_ENTRIES + 8  # arrays and objects: 4 an entry (itself and 3 lists), a few more
_SURROGATE = re.compile("[\ud800-\udfff]")
_HEAD = re.compile(r"blocks\.(\d+)\.attn\.hook_(?:result\.(\d+)|z\[(\d+)\])")
_OTHER = re.compile(r"blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post|mlp_out|attn_out)")


class _Bad(ValueError):
    """What is wrong with a file's content; read_paper_json names the file."""


# ---- sites and names -----------------------------------------------------------------------
def paper_site_name(site_short: str, site_id: str = "") -> str:
    """The paper's name of a site: x1.post -> blocks.1.hook_resid_post, a0.2 ->
    blocks.0.attn.hook_result.2 (the paper's head output is our head site's vector)."""
    parsed = parse_short(site_short)
    if parsed is None:
        if site_id:
            return site_id
        raise OutputError(f"site {site_short!r} has no name in the paper's files")
    kind, layer, head = parsed
    if kind == "head":
        return f"blocks.{layer}.attn.hook_result.{head}"
    return make_site(kind, layer).hook


def site_from_paper(name: str):
    """Our Site for the paper's probed_act (our own hook ids are taken too); None if it is not one."""
    if m := _HEAD.fullmatch(name):
        return make_site("head", int(m.group(1)), int(m.group(2) or m.group(3)))
    if m := _OTHER.fullmatch(name):
        return make_site(m.group(2), int(m.group(1)))
    return None


def _paper_temperature(schedule: str) -> float:
    """One temperature without noise is written as itself; anything else as the paper's Auto."""
    try:
        entries = parse_schedule(schedule) if schedule.strip() else ()
    except ValueError:
        return AUTO
    if len(entries) == 1 and entries[0][1] == 0:
        return float(entries[0][0])
    return AUTO


def paper_file_name(result: QueryResult) -> str:
    """The name the paper's viewer looks for, e.g. blocks.1.hook_resid_post-19-Auto-dist.json."""
    t = _paper_temperature(result.schedule)
    label = "Auto" if t == AUTO else str(t)
    return (f"{paper_site_name(result.site_short, result.site_id)}-{result.query_position}-{label}-"
            f"{METRIC_NAMES[result.metric]}.json")


# ---- export --------------------------------------------------------------------------------
def _query_pieces(result: QueryResult) -> list[str]:
    task = TASKS.get(result.task)
    if task is not None:
        return task.vocab.token_strings(result.query_tokens)
    return list(result.query_labels)  # a text task's labels are its token strings


def paper_doc(result: QueryResult, query_pieces: list[str] | None = None, digits: int = DIGITS) -> dict:
    """The paper's cached-generation object for a result (see the module docstring)."""
    metric = METRIC_NAMES[result.metric]
    fill = NOT_COMPARED[metric]

    def value(distance: float) -> float:  # our distance -> the paper's metric value
        if not math.isfinite(distance):
            return fill
        return round(distance if metric == "dist" else 1.0 - distance, digits)

    generation = []
    for s in result.samples:
        n = len(s.pieces)
        diffs = s.prob_diff if len(s.prob_diff) == n else [0.0] * n  # no colouring: the viewer's "colour off"
        entry = [list(s.pieces), [round(p, digits) for p in diffs], [value(d) for d in s.position_distances],
                 int(s.compared_position), value(s.distance)]
        generation.extend([entry] * s.multiplicity)  # the paper lists every candidate
    pieces = list(query_pieces) if query_pieces is not None else _query_pieces(result)
    return {"query_input": pieces, "query_position": int(result.query_position),
            "probed_act": paper_site_name(result.site_short, result.site_id), "attn_weights": [],
            "temperature": _paper_temperature(result.schedule), "metric": metric, "generation": generation}


def write_paper_json(result: QueryResult, path: str | Path, query_pieces: list[str] | None = None,
                     digits: int = DIGITS) -> Path:
    """Write a result as the paper's viewer reads it; returns the file written.

    `path` may be an existing folder: the file then gets the name the viewer looks for
    (`paper_file_name`). `query_pieces` are the query's token strings (default: the task's
    tokenizer, or the query's position labels for a text model). Written atomically; OutputError
    (and no file) when it cannot be."""
    path = Path(path)
    try:
        folder, parent = path.is_dir(), path.parent.is_dir()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise OutputError(f"cannot write {str(path)[:300]}: {e.strerror or e}") from None
    if folder:
        path = path / paper_file_name(result)
    elif not parent:
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        text = json.dumps(paper_doc(result, query_pieces, digits), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
    except ValueError:  # a NaN prob-diff: JSON has no NaN, and the paper's files hold none
        raise OutputError(f"cannot write {path}: the result holds a prob-diff that is not a number") from None
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


# ---- import --------------------------------------------------------------------------------
def _number(value, what: str, nullable: bool = False) -> float:
    if value is None and nullable:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{what} must be a number, got {_show(value)}")
    try:
        return float(value)
    except OverflowError:  # an integer of 309 digits or more has no float
        raise _Bad(f"{what} must be a number a float can hold, got an integer of {len(str(value))} digits") from None


def _whole(value, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{what} must be a whole number, got {_show(value)}")
    if not low <= value <= high:
        raise _Bad(f"{what} must be from {low} to {high}, got {value}")
    return value


def _list(value, what: str, high: int = MAX_TOKENS) -> list:
    if not isinstance(value, list):
        raise _Bad(f"{what} must be a list, got {_show(value)}")
    if len(value) > high:
        raise _Bad(f"{what} has {len(value):,} entries, more than {high:,}")
    return value


def _strings(value, what: str) -> list[str]:
    items = _list(value, what)
    if not items:
        raise _Bad(f"{what} is empty")
    for i, piece in enumerate(items):
        if not isinstance(piece, str):
            raise _Bad(f"{what}[{i}] must be a token string, got {_show(piece)}")
        if _SURROGATE.search(piece):  # a lone surrogate: printing it would fail later
            raise _Bad(f"{what}[{i}] holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not text")
    return items


def _show(value) -> str:
    """A wrong value as a message shows it: its kind for containers, else itself (cut short)."""
    kind = {dict: "an object", list: "a list", bool: "true/false", type(None): "null"}.get(type(value))
    if kind:
        return kind
    return repr(value[:40] if isinstance(value, str) else value)[:48]


def _ours(value: float, metric: str) -> float:
    """The paper's metric value -> our distance; NaN where it marks a position not compared."""
    if not math.isfinite(value) or value == NOT_COMPARED[metric]:
        return math.nan
    return value if metric == "dist" else 1.0 - value


def _entry(item, i: int, metric: str) -> tuple[list[str], list[float], list[float], int, float]:
    where = f"generation[{i}]"
    if not isinstance(item, list) or len(item) != 5:
        raise _Bad(f"{where} must be a list of 5 (tokens, prob_diff, metric values, best index, best value), "
                   f"got {_show(item) if not isinstance(item, list) else f'{len(item)} items'}")
    pieces = _strings(item[0], f"{where} tokens")
    n = len(pieces)
    diffs = [_number(v, f"{where} prob_diff[{j}]") for j, v in enumerate(_list(item[1], f"{where} prob_diff"))]
    values = [_number(v, f"{where} metric value [{j}]", nullable=True)
              for j, v in enumerate(_list(item[2], f"{where} metric values"))]
    if len(values) != n:
        raise _Bad(f"{where} has {n} tokens but {len(values)} metric values")
    if diffs and len(diffs) != n:
        raise _Bad(f"{where} has {n} tokens but {len(diffs)} prob_diff values")
    if diffs and not any(diffs):
        diffs = []  # all zero: the viewer's "colour off", written for a sample without colouring
    best = _whole(item[3], f"{where} best index", 0, n - 1)
    distance = _ours(_number(item[4], f"{where} best value", nullable=True), metric)
    return pieces, diffs, [_ours(v, metric) for v in values], best, math.inf if math.isnan(distance) else distance


def _task_for(pieces: set[str], task: str | None):
    """The synthetic task whose tokens these are (None: a text model's, kept as strings only)."""
    if task is not None:
        chosen = get_task(task)
        if chosen.name not in TASKS:
            return None
        bad = sorted(p for p in pieces if chosen.vocab.token_id(p) is None)
        if bad:
            raise _Bad(f"{', '.join(map(repr, bad[:5]))} {'is' if len(bad) == 1 else 'are'} not "
                       f"{chosen.name} token{'' if len(bad) == 1 else 's'}")
        return chosen
    fits = [t for t in TASKS.values() if all(t.vocab.token_id(p) is not None for p in pieces)]
    return fits[0] if len(fits) == 1 else None


def result_from_paper(doc, task: str | None = None, epsilon: float = 0.1, model: str = "") -> QueryResult:
    """A QueryResult from a parsed cached-generation object; ValueError says what is wrong."""
    if not isinstance(doc, dict):
        raise _Bad(f"the file holds {_show(doc)}, not an object with {', '.join(PAPER_KEYS)}")
    missing = [k for k in ("query_input", "query_position", "probed_act", "metric", "generation") if k not in doc]
    if missing:
        raise _Bad(f"missing {', '.join(missing)} (an InversionView cached-generation file has "
                   f"{', '.join(PAPER_KEYS)})")
    query = _strings(doc["query_input"], "query_input")
    position = _whole(doc["query_position"], "query_position", 0, len(query) - 1)
    if not isinstance(doc["probed_act"], str) or (site := site_from_paper(doc["probed_act"])) is None:
        raise _Bad(f"probed_act {_show(doc['probed_act'])} is not a site name such as blocks.1.hook_resid_post "
                   "or blocks.0.attn.hook_result.0")
    metric = doc["metric"]
    if metric not in OUR_METRICS:
        raise _Bad(f"metric must be \"dist\" or \"sim\", got {_show(metric)}")
    for j, w in enumerate(_list(doc.get("attn_weights", []), "attn_weights")):  # checked, not kept
        _number(w, f"attn_weights[{j}]")
    temperature = _number(doc.get("temperature", AUTO), "temperature")
    if not math.isfinite(temperature) or temperature < 0:
        raise _Bad(f"temperature must be 0 (Auto) or above, got {temperature}")
    entries = [_entry(item, i, metric) for i, item in
               enumerate(_list(doc["generation"], "generation", high=MAX_ENTRIES))]

    every = set(query).union(*(set(e[0]) for e in entries)) if entries else set(query)
    chosen = _task_for(every, task)
    auto = temperature == AUTO
    merged: dict[tuple[str, ...], SampleResult] = {}
    for pieces, diffs, values, best, distance in entries:
        key = tuple(pieces)
        if key in merged:
            merged[key].multiplicity += 1
            continue
        if chosen is not None:
            ids = [chosen.vocab.token_id(p) for p in pieces]
            text, labels = chosen.vocab.decode(ids), chosen.position_labels(ids)
            fact, well_formed = chosen.fact(ids), chosen.check(text).well_formed
        else:
            ids, text, labels, fact, well_formed = [], "".join(pieces), list(pieces), "", True
        merged[key] = SampleResult(
            text=text, tokens=ids, labels=labels, multiplicity=1, distance=distance, compared_position=best,
            position_distances=values, temperature=math.nan if auto else temperature,
            noise=math.nan if auto else 0.0, fact=fact, well_formed=well_formed, prob_diff=diffs, pieces=pieces)
    ranked = sorted(merged.values(), key=lambda s: (math.isnan(s.distance), s.distance, s.text, s.tokens))
    samples = []
    for rank, s in enumerate(ranked, 1):
        s.rank, s.in_epsilon = rank, s.distance <= epsilon
        samples.append(s)

    if chosen is not None:
        q_ids = [chosen.vocab.token_id(p) for p in query]
        q_text, q_labels = chosen.vocab.decode(q_ids), chosen.position_labels(q_ids)
        schedule = "auto" if auto else f"{temperature:g}:0"
    else:
        q_ids, q_text, q_labels = [], "".join(query), list(query)
        schedule = "" if auto else f"{temperature:g}:0"
    result = QueryResult(model=model, task=chosen.name if chosen is not None else "", query=q_text,
                         query_tokens=q_ids, query_labels=q_labels, query_position=position, site_short=site.short,
                         site_id=site.id, metric=OUR_METRICS[metric], epsilon=epsilon, candidates=len(entries),
                         samples=samples, schedule=schedule)
    if chosen is not None:
        _add_features(result, chosen)
    return result


def _add_features(result: QueryResult, task) -> None:
    """The query's features and each sample's agreement with them, as run_query gives them."""
    try:
        from engine.query.types import agreement, query_features
    except ImportError:  # an engine without the preimage summary's features
        return
    result.features = query_features(task, result.query_tokens, result.query_position)
    for s in result.samples:
        s.agrees = agreement(task, result.features, s.tokens, s.compared_position, result.query_tokens)


def read_paper_json(path: str | Path, task: str | None = None, epsilon: float = 0.1, model: str = "") -> QueryResult:
    """A result from one of the paper's cached-generation files.

    Identical token sequences become one sample with their count as multiplicity. The task
    (counting or addition) is the one whose vocabulary has every token; when none or both fit
    (the paper's IOI and factual-recall files) the samples keep their token strings and no ids,
    unless `task` names one. StoreError, one line naming the file, when it cannot be read."""
    path = Path(path)
    try:
        if not path.is_file():
            raise StoreError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise StoreError(f"{path}: {size:,} bytes, more than the {MAX_FILE_BYTES:,} a cached-generation file "
                             "may have")
        data = path.read_bytes()
    except OSError as e:
        raise StoreError(f"{path}: cannot read it ({e.strerror or e})") from None
    return paper_json_from_bytes(data, path, task=task, epsilon=epsilon, model=model)


def paper_json_from_bytes(data: bytes, path: str | Path, task: str | None = None, epsilon: float = 0.1,
                          model: str = "") -> QueryResult:
    """read_paper_json's reading of a file's bytes (the window sends them to its engine process, which
    may run on another machine); `path` only names the file in messages."""
    if len(data) > MAX_FILE_BYTES:
        raise StoreError(f"{path}: {len(data):,} bytes, more than the {MAX_FILE_BYTES:,} a cached-generation file "
                         "may have")
    depth, containers = nesting(data)
    if depth > MAX_DEPTH:
        raise StoreError(f"{path}: nested {depth} levels deep, more than the {MAX_DEPTH} a cached-generation "
                         "file may have")
    if containers > MAX_CONTAINERS:  # each would be a Python list or dict: about 60 bytes from 2 of the file
        raise StoreError(f"{path}: {containers:,} arrays and objects, more than the {MAX_CONTAINERS:,} a "
                         f"cached-generation file may have (4 for each of at most {MAX_ENTRIES:,} samples)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not UTF-8 text, so not a cached-generation JSON file") from None
    except (ValueError, RecursionError) as e:  # ValueError: JSONDecodeError, or an integer past 4,300 digits
        raise StoreError(f"{path}: not valid JSON ({str(e).splitlines()[0][:200] if str(e) else 'too deep'})") from None
    try:
        return result_from_paper(doc, task=task, epsilon=epsilon, model=model)
    except _Bad as e:
        raise StoreError(f"{path}: not a readable InversionView cached-generation file: {e}") from None
