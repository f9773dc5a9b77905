"""The engine protocol's messages: values survive the trip, and nothing in a message can run code."""
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.query.types import QueryChunk, QueryOptions, QueryResult, SampleResult
from engine.server.codec import CodecError, decode, encode
from engine.server.wire import MAX_HEADER, FrameWriter, WireError, read_frame


def trip(value):
    """value -> a frame on a byte stream -> the value read back."""
    stream, buffers = io.BytesIO(), []
    FrameWriter(stream).write({"body": encode(value, buffers)}, buffers)
    stream.seek(0)
    header, got = read_frame(stream)
    assert read_frame(stream) is None  # one frame, then a clean end
    return decode(header["body"], got)


def sample(i: int) -> SampleResult:
    return SampleResult(text=f"Bab{i}E", tokens=[0, 5, i], labels=["B", "a", ":"], multiplicity=i + 1,
                        distance=0.1 * i, compared_position=2, position_distances=[math.nan, 0.5, 0.1 * i],
                        temperature=1.0, noise=0.0, fact="count 2", well_formed=i % 2 == 0, pieces=["B", "a", "b"])


def test_a_query_result_comes_back_equal_field_by_field():
    result = QueryResult(model="counting", task="counting", query="Bab", query_tokens=[0, 5, 6],
                         query_labels=["B", "a", ":"], query_position=2, site_short="x1.post",
                         site_id="blocks.1.hook_resid_post", metric="euclidean", epsilon=0.1, candidates=3,
                         samples=[sample(i) for i in range(3)], features=[("count", "2")])
    back = trip(result)
    assert isinstance(back, QueryResult) and isinstance(back.samples[0], SampleResult)
    assert back.features == [("count", "2")]  # tuples stay tuples
    for a, b in zip(result.samples, back.samples):
        assert a.tokens == b.tokens and a.distance == b.distance and a.well_formed == b.well_formed
        assert math.isnan(b.position_distances[0]) and b.position_distances[1:] == a.position_distances[1:]
    chunk = trip(QueryChunk(samples=[sample(1)], done=64, total=256, elapsed=0.25))
    assert (chunk.done, chunk.total, chunk.samples[0].multiplicity) == (64, 256, 2)
    assert trip(QueryOptions(schedule=((0.5, 0.0), (2.0, 0.1)), keep=(1, 3))) == \
        QueryOptions(schedule=((0.5, 0.0), (2.0, 0.1)), keep=(1, 3))


def test_arrays_travel_as_raw_buffers_with_their_dtype_and_shape():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    stream, buffers = io.BytesIO(), []
    FrameWriter(stream).write({"body": encode({"a": a, "p": Path("/x/y"), 7: (1, None)}, buffers)}, buffers)
    raw = stream.getvalue()
    (length,) = struct.unpack(">I", raw[:4])
    assert len(raw) == 4 + length + a.nbytes  # the numbers are not in the JSON
    stream.seek(0)
    header, got = read_frame(stream)
    back = decode(header["body"], got)
    assert back["a"].dtype == np.float32 and np.array_equal(back["a"], a)
    assert back["p"] == Path("/x/y") and back[7] == (1, None)


def test_a_flow_graph_travels_as_columns_and_reads_back_the_same(tmp_path):
    from engine.flow.build import flow_for_query
    from engine.probed.model import PAPER_CONFIGS, build_probed

    probed = build_probed(PAPER_CONFIGS["counting"], seed=0)
    graph = flow_for_query(probed, "Baiaigiaaggi|g:3")
    back = trip(graph)
    assert [n.key for n in back.nodes] == [n.key for n in graph.nodes]
    assert back.edges == graph.edges and back.route == graph.route
    for a, b in zip(graph.nodes, back.nodes):
        assert (a.site, a.top, a.promoted, a.suppressed, a.target, a.target_rank) == \
               (b.site, b.top, b.promoted, b.suppressed, b.target, b.target_rank)
    assert np.array_equal(back.attention, graph.attention)
    assert all(back.label(t) == graph.label(t) for n in graph.nodes for t, _ in n.top)
    assert back.to_json() == graph.to_json()  # what an export writes is the same either side


@pytest.mark.parametrize("body", [
    {"$c": "system", "f": {}},  # not a type the protocol carries
    {"$c": "Popen", "f": {"args": ["sh"]}},
    {"$a": 0, "dtype": "O", "shape": [1]},  # object arrays would need pickle
    {"$a": 0, "dtype": "<f4", "shape": [1000]},  # more than the buffer holds
    {"$f": "__import__('os')"},
    {"$c": "QueryOptions", "f": {"no_such_field": 1}},
])
def test_a_message_cannot_name_code_or_malformed_values(body):
    with pytest.raises(CodecError):
        decode(body, [b"\0" * 8])


def test_values_that_cannot_cross_are_refused_when_sent():
    with pytest.raises(CodecError):
        encode(object(), [])
    with pytest.raises(CodecError):
        encode(np.array([object()]), [])


@pytest.mark.parametrize("raw", [
    struct.pack(">I", 10) + b"{}",  # ends inside the header
    struct.pack(">I", MAX_HEADER + 1),  # an absurd length: not this protocol
    struct.pack(">I", 2) + b"[]",  # not an object
    struct.pack(">I", 5) + b"{nope",  # not JSON
    b"\0\0",  # ends inside the length
])
def test_a_garbled_stream_is_a_wire_error_not_a_hang_or_an_allocation(raw):
    with pytest.raises(WireError):
        read_frame(io.BytesIO(raw))


def test_buffers_listed_but_missing_are_an_error():
    header = json.dumps({"$buffers": [16]}).encode()
    with pytest.raises(WireError):
        read_frame(io.BytesIO(struct.pack(">I", len(header)) + header + b"short"))
