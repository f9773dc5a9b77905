"""The engine client over the protocol (a fake engine in a thread): request ids, stale results dropped,
cancel, readable errors, flow graphs beside queries."""
import threading

import pytest

from app.workers.engine_client import EngineClient
from app.workers.query_request import QueryRequest
from engine.errors import SiteError, StoreError
from engine.query.types import QueryOptions
from engine.server.service import describe_error
from engine.store.folders import find_model
from tests.app.fakes import FakeEngine


@pytest.fixture
def client(qtbot, fake_models):
    engines = []

    def make(engine):  # a FakeEngine, or an EngineBackend made by the test
        c = EngineClient(engine.backend() if isinstance(engine, FakeEngine) else engine)
        engines.append(c)
        return c

    yield make
    for c in engines:
        assert c.shutdown(2000)


def request(text="Baiaigiaaggi|g:3", site="x1.post", position=14, candidates=256, **kw):
    entry = find_model("fake-counting")
    return QueryRequest(str(entry.path), text, site, position, QueryOptions(candidates=candidates, chunk_size=32, **kw))


def loaded(qtbot, c):
    with qtbot.waitSignal(c.modelLoaded, timeout=5000) as blocker:
        c.load_model(find_model("fake-counting"))
    return blocker.args[0]


def test_load_then_run_streams_partials_and_finishes(qtbot, client):
    c = client(FakeEngine())
    info = loaded(qtbot, c)
    assert info.name == "fake-counting" and "x1.post" in info.trained_sites and "attn0" not in info.trained_sites
    partials, progress = [], []
    c.runPartial.connect(partials.append)
    c.runProgress.connect(lambda *a: progress.append(a))
    with qtbot.waitSignal(c.runFinished, timeout=10000) as blocker:
        c.run(request())
    result = blocker.args[0]
    assert result.complete and result.candidates_done == 256
    assert progress[-1][:2] == (256, 256)
    assert partials and all(not p.complete for p in partials)
    assert partials[-1].candidates_done == 256  # the worker always sends the last snapshot
    d = [s.distance for s in result.samples]
    assert d == sorted(d)
    assert not c.running


def test_the_work_runs_on_the_engine_thread_not_the_gui_thread(qtbot, client):
    engine = FakeEngine()
    threads = []
    original = engine.run_query

    def spy(*a, **kw):
        threads.append(threading.current_thread())
        return original(*a, **kw)

    engine.run_query = spy
    c = client(engine)
    loaded(qtbot, c)
    with qtbot.waitSignal(c.runFinished, timeout=10000):
        c.run(request())
    assert threads and threads[0] is not threading.main_thread()


def test_a_flow_graph_is_answered_while_a_query_runs_on_its_own_thread(qtbot, client):
    """The query below cannot finish until the test lets it; a flow graph computed on the engine
    thread would wait behind it and never arrive."""
    from app.workers.flow_request import FlowRequest
    from engine.server.backend import EngineBackend

    engine, release, threads = FakeEngine(), threading.Event(), {}

    def blocked_query(*a, **kw):
        threads["query"] = threading.current_thread()
        release.wait(30)  # a safety net only: the test releases it
        return engine.run_query(*a, **kw)

    def flow_graph(inv, text, target=None, top_k=10, cancel=None):
        threads["flow"] = threading.current_thread()
        return ("graph of", text)

    c = client(EngineBackend(load_inverter=engine.load_inverter, run_query=blocked_query, flow_graph=flow_graph))
    loaded(qtbot, c)
    c.run(request())
    qtbot.waitUntil(lambda: "query" in threads, timeout=5000)
    with qtbot.waitSignal(c.flowReady, timeout=5000) as blocker:
        c.compute_flow(FlowRequest(str(find_model("fake-counting").path), "Babcab|a:2"))
    assert blocker.args[1] == ("graph of", "Babcab|a:2")
    assert c.running  # the query is still waiting
    assert threads["flow"] is not threads["query"] and threads["flow"] is not threading.main_thread()
    with qtbot.waitSignal(c.runFinished, timeout=10000):
        release.set()


def test_a_new_run_supersedes_the_old_and_its_results_are_dropped(qtbot, client):
    engine = FakeEngine(chunk_delay=0.05)
    cancels = []
    original = engine.run_query

    def spy(inv, text, site, position, options, on_chunk=None, cancel=None):
        cancels.append(cancel)
        return original(inv, text, site, position, options, on_chunk, cancel)

    engine.run_query = spy
    c = client(engine)
    loaded(qtbot, c)
    finished = []
    c.runFinished.connect(finished.append)
    c.run(request(seed=1))
    qtbot.waitUntil(lambda: len(cancels) == 1, timeout=5000)
    with qtbot.waitSignal(c.runFinished, timeout=10000):
        c.run(request(seed=2, candidates=64))
    assert cancels[0].is_set()  # the engine stopped the first
    assert len(finished) == 1 and finished[0].candidates == 64


def test_cancel_returns_the_partial_result(qtbot, client):
    # the 200 ms goal is measured against the real engine in benchmarks/ui_latency.py
    c = client(FakeEngine(chunk_delay=0.1))
    loaded(qtbot, c)
    with qtbot.waitSignal(c.runPartial, timeout=10000):
        c.run(request(candidates=4096))
    with qtbot.waitSignal(c.runFinished, timeout=10_000) as blocker:
        c.cancel()
    result = blocker.args[0]
    assert not result.complete and 0 < result.candidates_done < 4096


def test_user_errors_arrive_as_their_one_line_message(qtbot, client):
    c = client(FakeEngine())
    loaded(qtbot, c)
    with qtbot.waitSignal(c.runFailed, timeout=5000) as blocker:
        c.run(request(text="Bab1|a:1"))
    assert "allowed" in blocker.args[0] or "well-formed" in blocker.args[0]
    assert not c.running


def test_unexpected_errors_are_readable_and_the_worker_keeps_working(qtbot, client):
    engine = FakeEngine()
    c = client(engine)
    loaded(qtbot, c)
    engine.fail_run = RuntimeError("the decoder exploded\nsecond line")
    with qtbot.waitSignal(c.runFailed, timeout=5000) as blocker:
        c.run(request())
    assert blocker.args[0] == "RuntimeError: the decoder exploded"
    with qtbot.waitSignal(c.runFinished, timeout=5000):
        c.run(request())


def test_a_model_that_fails_to_load_reports_why(qtbot, client, fake_models):
    (fake_models[0] / "decoder.safetensors").unlink()
    c = client(FakeEngine())
    with qtbot.waitSignal(c.modelFailed, timeout=5000) as blocker:
        c.load_model(find_model("fake-counting"))
    assert "fake-counting" in blocker.args[0] and "decoder" in blocker.args[0]
    with qtbot.waitSignal(c.runFailed, timeout=5000) as blocker:
        c.run(request())
    assert "not loaded" in blocker.args[0]


def test_describe_error_keeps_user_errors_as_they_are():
    assert describe_error(SiteError("unknown site 'x9'")) == "unknown site 'x9'"
    assert describe_error(StoreError("no file")) == "no file"
    assert "Out of memory" in describe_error(MemoryError())
