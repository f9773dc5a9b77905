"""Python values <-> a protocol message's JSON header and raw buffers (engine/server/wire.py).

What can cross: None, bools, numbers, strings, lists, tuples, dicts, paths, numeric numpy arrays
(sent as raw buffers, not as JSON numbers) and the engine's own result dataclasses named in
DATACLASSES. Decoding builds only those classes, by their field names: a message cannot make the
reader import a module or call anything else. A FlowGraph travels as columns (codec_flow.py):
its nodes and edges as arrays, not as tens of thousands of JSON objects.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path

import numpy as np

# The dataclasses a message may hold, by the name used on the wire.
DATACLASSES = {
    "QueryOptions": "engine.query.types",
    "QueryResult": "engine.query.types",
    "SampleResult": "engine.query.types",
    "QueryChunk": "engine.query.types",
    "ModelEntry": "engine.store.folders",
    "ProbedConfig": "engine.probed.config",
    "Site": "engine.probed.sites",
    "NeuronReadout": "engine.flow.graph",
    "NodeReading": "engine.explain.sweep",
    "InformationMap": "engine.explain.sweep",
    "FeatureShare": "engine.explain.summary",
    "PatchReport": "engine.patching.report",
    "PatchInputs": "engine.patching.report",
    "PatchEffect": "engine.patching.report",
    "Node": "engine.patching.nodes",
    "LoadedModel": "engine.server.replies",
    "TrainStart": "engine.server.training",
    "DecoderProgress": "engine.decoder.progress",
    "QualityPoint": "engine.decoder.progress",
    "CheckProgress": "engine.decoder.progress",
}
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats: arrays of anything else are refused
_classes: dict[str, type] = {}


class CodecError(ValueError):
    """A value that cannot be sent, or a message that does not decode to one."""


def _class(name: str) -> type:
    if name not in _classes:
        if name not in DATACLASSES:
            raise CodecError(f"a message names the type {name!r}, which the protocol does not carry")
        _classes[name] = getattr(importlib.import_module(DATACLASSES[name]), name)
    return _classes[name]


def encode(value, buffers: list) -> object:
    """A JSON-able form of value; arrays are appended to buffers and referred to by index."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, np.generic):
        return encode(value.item(), buffers)
    if isinstance(value, list):
        return [encode(v, buffers) for v in value]
    if isinstance(value, tuple):
        return {"$t": [encode(v, buffers) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, buffers) for k, v in value.items()}
        return {"$d": [[encode(k, buffers), encode(v, buffers)] for k, v in value.items()]}
    if isinstance(value, Path):
        return {"$p": str(value)}
    if isinstance(value, np.ndarray):
        return _encode_array(value, buffers)
    name = type(value).__name__
    if name == "FlowGraph":
        from engine.server.codec_flow import encode_graph

        return {"$g": encode_graph(value, buffers)}
    if dataclasses.is_dataclass(value) and DATACLASSES.get(name) == type(value).__module__:
        fields = {f.name: encode(getattr(value, f.name), buffers) for f in dataclasses.fields(value) if f.init}
        return {"$c": name, "f": fields}
    raise CodecError(f"cannot send a {type(value).__module__}.{name} to the other end")


def _encode_array(a: np.ndarray, buffers: list) -> dict:
    if a.dtype.kind not in NUMERIC_KINDS:
        raise CodecError(f"cannot send an array of {a.dtype}")
    a = np.ascontiguousarray(a)
    buffers.append(a)
    return {"$a": len(buffers) - 1, "dtype": a.dtype.str, "shape": list(a.shape)}


def decode(value, buffers: list):
    """The value encode() made; CodecError for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v, buffers) for v in value]
    if not isinstance(value, dict):
        raise CodecError(f"unexpected {type(value).__name__} in a message")
    try:
        if "$t" in value:
            return tuple(decode(v, buffers) for v in value["$t"])
        if "$d" in value:
            return {_key(decode(k, buffers)): decode(v, buffers) for k, v in value["$d"]}
        if "$f" in value:
            return float(value["$f"]) if value["$f"] in ("nan", "inf", "-inf") else _bad("a float")
        if "$p" in value:
            return Path(value["$p"])
        if "$a" in value:
            return _decode_array(value, buffers)
        if "$g" in value:
            from engine.server.codec_flow import decode_graph

            return decode_graph(value["$g"], buffers)
        if "$c" in value:
            cls = _class(value["$c"])
            fields = {k: decode(v, buffers) for k, v in value["f"].items()}
            return cls(**fields)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        if isinstance(e, CodecError):
            raise
        raise CodecError(f"a malformed value in a message ({type(e).__name__}: {e})") from None
    return {k: decode(v, buffers) for k, v in value.items()}


def _key(k):
    if isinstance(k, list):  # a list cannot be a key: the encoder never makes one
        raise CodecError("a message has a list as a dictionary key")
    return k


def _bad(what: str):
    raise CodecError(f"a message holds a malformed {what}")


def _decode_array(ref: dict, buffers: list) -> np.ndarray:
    dtype = np.dtype(ref["dtype"])
    if dtype.kind not in NUMERIC_KINDS:
        raise CodecError(f"a message holds an array of {dtype}")
    shape = tuple(int(n) for n in ref["shape"])
    data = buffers[ref["$a"]]
    if len(data) != dtype.itemsize * math.prod(shape):
        raise CodecError("an array's buffer does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape)
