"""Activation patching: set-up, nodes, patched passes, cumulative runs and the `patch` command.

Every patched value is checked against a plain `run_with_hooks` written here from scratch (one
node per pass, no batching, x{L}.mid written the other way: at ln2's input with the difference
added to the MLP output), and the shares are recomputed from those values.
"""
import json
import threading

import pytest
import torch

from engine.cli.main import main as cli_main
from engine.errors import Cancelled, SiteError
from engine.patching.nodes import Node, all_nodes, parse_node, parse_nodes
from engine.patching.run import metric_of, patch_cumulative, patch_nodes
from engine.patching.setup import PatchSetup, flip_one, make_setup, parse_flip
from engine.probed.sites import get_site
from engine.store.folders import find_model, load_probed
from engine.tasks.base import Task, TaskInputError
from tests.engine.helpers import run_cli

CLEAN = "Baiaigiaaggi|g:3"  # count of g: 3
IOI_CLEAN = "Then, Mary and John went to the store. John gave a drink to Mary"
IOI_CORRUPT = "Then, Mary and John went to the store. Mary gave a drink to John"  # S2 flipped (and the answer)


@pytest.fixture(scope="module")
def counting():
    torch.set_num_threads(1)
    return load_probed(find_model("counting"))


@pytest.fixture(scope="module")
def addition():
    return load_probed(find_model("addition"))  # 4 heads: the sum over heads is a real sum


@pytest.fixture(scope="module")
def ioi():
    return load_probed(find_model("ioi"))


@pytest.fixture(scope="module")
def setup(counting):
    task = counting.task
    clean = task.parse_query(CLEAN)
    corrupt = flip_one(task, flip_one(task, clean, 5, "a"), "N", "2")  # one g fewer, and the answer 2
    return make_setup(task, clean, corrupt)


# ---- the independent reference: plain hooks, one node per pass ------------------------------------
def reference_metric(model, setup, nodes):
    """The metric of the clean run with `nodes` patched, written directly against the hooks."""
    bridge, cfg = model.bridge, model.config
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(torch.tensor([list(setup.corrupt)]))
    hooks = []
    for node in nodes:
        site, p = get_site(cfg, node.site), node.position
        if site.kind == "resid_mid":
            # the residual stream is the ln2 input plus what flows past it: write the corrupt mid at
            # ln2's input, and add the same difference to the MLP's output
            delta = {}

            def at_mid(x, hook, p=p, src=cache[site.hook], delta=delta):
                x = x.clone()
                delta["d"] = src[0, p] - x[0, p]
                x[0, p] = src[0, p]
                return x

            def at_mlp(x, hook, p=p, delta=delta):
                x = x.clone()
                x[0, p] += delta["d"]
                return x

            hooks += [(site.hook, at_mid), (f"blocks.{site.layer}.hook_mlp_out", at_mlp)]
            continue

        def write(x, hook, p=p, head=site.head, src=cache[site.hook]):
            x = x.clone()
            if head is None:
                x[0, p] = src[0, p]
            else:
                x[0, p, head] = src[0, p, head]
            return x

        hooks.append((site.hook, write))
    with torch.inference_mode():
        logits = bridge.run_with_hooks(torch.tensor([list(setup.clean)]), fwd_hooks=hooks)[0, setup.answer_position]
    if setup.metric == "prob":
        return torch.softmax(logits, -1)[setup.answer].item()
    return (logits[setup.answer] - logits[setup.corrupt_answer]).item()


# ---- the task's answer position ----------------------------------------------------------------------
def test_each_task_reads_its_answer_where_the_answer_is_predicted(counting, addition, ioi):
    ids = counting.task.parse_query(CLEAN)
    assert counting.task.answer_position(ids) == ids.index(counting.task.colon_id) == 14
    add = addition.task.parse_query("B615+861=1476")
    assert addition.task.answer_position(add) == 8 and addition.task.position_labels(add)[8] == "="
    prompt = ioi.task.parse_query(IOI_CLEAN)
    assert ioi.task.answer_position(prompt) == ioi.task.resolve_position(prompt, "END") == len(prompt) - 2
    # the base rule: the position before the last real token (EOS is not the answer)
    assert Task.answer_position(ioi.task, prompt) == len(prompt) - 2
    assert Task.answer_position(addition.task, add) == len(add) - 3


# ---- nodes and set-ups -------------------------------------------------------------------------------
def test_nodes_parse_by_name_alias_hook_and_label(counting, ioi):
    cfg, task = counting.config, counting.task
    ids = task.parse_query(CLEAN)
    assert parse_node(cfg, task, ids, "a1.0@:") == Node("a1.0", 14)
    assert parse_node(cfg, task, ids, "x1.pre@5") == Node("x0.post", 5)  # the alias rule
    assert parse_node(cfg, task, ids, "blocks.0.attn.hook_z[0]@Q").label == "a0.0@13"
    assert parse_nodes(cfg, task, ids, "m0@3, x1.post@:,m0@3") == [Node("m0", 3), Node("x1.post", 14)]
    prompt = ioi.task.parse_query(IOI_CLEAN)
    # ',' is a token of the prompt: a comma starts a node only before SITE@
    assert parse_nodes(ioi.config, ioi.task, prompt, "x1.post@,,a3.3@END") == [Node("x1.post", 2),
                                                                               Node("a3.3", len(prompt) - 2)]
    with pytest.raises(SiteError, match="unknown site 'a0.1'.*sites: x0.pre a0.0"):
        parse_node(cfg, task, ids, "a0.1@3")
    with pytest.raises(TaskInputError, match="'Z' is not a position label.*one of: B | Q : N E"):
        parse_node(cfg, task, ids, "m0@Z")
    with pytest.raises(TaskInputError, match="expected a node as SITE@POSITION"):
        parse_nodes(cfg, task, ids, "m0")


def test_all_nodes_are_the_flow_graph_from_after_bos_to_the_answer(counting):
    nodes = all_nodes(counting.config, 14)
    sites = ["x0.pre", "a0.0", "x0.mid", "m0", "x0.post", "a1.0", "x1.mid", "m1", "x1.post"]
    assert len(nodes) == 9 * 14 and [n.site for n in nodes[::14]] == sites
    assert {n.position for n in nodes} == set(range(1, 15))


def test_flips_and_set_up_errors_are_one_line(counting, setup):
    task = counting.task
    ids = list(setup.clean)
    assert parse_flip("3=b") == ("3", "b") and parse_flip("==5") == ("=", "5") and parse_flip("8==") == ("8", "=")
    assert setup.answer_position == 14 and setup.differing == [5, 15]
    assert task.vocab.token_strings([setup.answer, setup.corrupt_answer]) == ["3", "2"]
    cases = [
        (lambda: flip_one(task, ids, 99, "a"), "position 99 is out of range; this input has positions 0-16"),
        (lambda: flip_one(task, ids, 5, "g"), "position 5 already holds 'g'"),
        (lambda: flip_one(task, ids, 0, "a"), "start token"),
        (lambda: flip_one(task, ids, 5, "%"), "unknown token '%'"),
        (lambda: parse_flip("5a"), "expected a flip as POSITION=TOKEN"),
        (lambda: make_setup(task, ids, task.tokenize("Baiaigiaaggi|g:33")),
         "the clean input is 17 tokens long and the corrupted one 18"),
        (lambda: make_setup(task, ids, flip_one(task, ids, 5, "a")), "both inputs have the answer '3'"),
        (lambda: make_setup(task, ids, ids), "the same as the clean one"),
        (lambda: make_setup(task, ids, flip_one(task, ids, "N", "2"), position=5), "differ only after"),
        (lambda: make_setup(task, ids, setup.corrupt, metric="kl"), "unknown metric 'kl'"),
    ]
    for call, message in cases:
        with pytest.raises(TaskInputError) as e:
            call()
        assert message in str(e.value) and "\n" not in str(e.value)
    # prob needs no second answer
    assert make_setup(task, ids, flip_one(task, ids, 5, "a"), metric="prob").metric == "prob"


# ---- patched passes ------------------------------------------------------------------------------------
def test_patching_the_clean_run_into_itself_changes_nothing(counting, setup):
    same = PatchSetup(setup.clean, setup.clean, setup.answer_position, setup.answer, setup.corrupt_answer)
    report = patch_nodes(counting, same)
    assert report.clean == report.corrupt
    assert all(abs(e.metric - report.clean) < 1e-4 and e.share is None for e in report.effects)


def test_every_patch_matches_a_plain_hooked_run_and_its_share(counting, setup):
    report = patch_nodes(counting, setup)
    assert len(report.effects) == 126 and report.passes == 2 + 2  # 126 rows in 2 passes of 64
    clean = metric_of(counting, setup, setup.clean)
    corrupt = metric_of(counting, setup, setup.corrupt)
    assert report.clean == pytest.approx(clean, abs=1e-5) and report.corrupt == pytest.approx(corrupt, abs=1e-5)
    assert clean > 5 and corrupt < -5  # the model answers each input right
    for effect in report.effects:
        node = Node(effect.site, effect.position)
        expected = reference_metric(counting, setup, [node])
        assert effect.metric == pytest.approx(expected, abs=1e-4), effect.node
        assert effect.share == pytest.approx((expected - clean) / (corrupt - clean), abs=1e-5), effect.node
    by_node = {e.node: e for e in report.effects}
    assert by_node["x1.post@14"].share == pytest.approx(1.0, abs=1e-4)  # the last residual at the answer
    assert by_node["x0.pre@5"].share == pytest.approx(1.0, abs=1e-4)  # the only flipped token before it
    assert all(abs(by_node[f"x0.pre@{p}"].share) < 1e-6 for p in range(1, 15) if p != 5)


def test_prob_metric_and_the_same_on_another_answer_position(addition):
    task = addition.task
    clean = task.parse_query("B615+861=1476")
    corrupt = task.tokenize("B715+861=1576")
    setup = make_setup(task, clean, corrupt, position="A1", metric="prob")  # A1 predicts A2: 4 or 5
    assert task.vocab.token_strings([setup.answer, setup.corrupt_answer]) == ["4", "5"]
    nodes = [Node("a1.2", 9), Node("x0.mid", 9), Node("attn1", 9), Node("m0", 1), Node("x1.post", 9)]
    report = patch_nodes(addition, setup, nodes)
    for effect, node in zip(report.effects, nodes):
        assert effect.metric == pytest.approx(reference_metric(addition, setup, [node]), abs=1e-5)
    assert report.effects[-1].share == pytest.approx(1.0, abs=1e-4)


def test_patches_add_up_as_the_residual_stream_does(addition):
    """The block's arithmetic, through patches (4 heads: the sum over heads is a real sum):
    attn_out = the heads' outputs + b_O, so patching attn{L} at a position moves the answer exactly
    as patching every head of layer L there does; resid_post = resid_mid + mlp_out, so x{L}.post
    is x{L}.mid and m{L} together; resid_mid = resid_pre + attn_out, so at the answer position
    (where x{L}.pre feeds no other position that matters) x{L}.mid is x{L}.pre and every head.
    Elsewhere x{L}.pre also feeds later positions' attention, so only all positions up to the
    answer together give the same: the whole effect."""
    task = addition.task
    clean = task.parse_query("B615+861=1476")
    setup = make_setup(task, clean, task.tokenize("B619+867=1486"), position="A2")  # A2 predicts A3: 7 or 8
    ans = setup.answer_position

    def together(nodes):
        return patch_cumulative(addition, setup, nodes).steps[-1].metric

    def alone(nodes):
        return [e.metric for e in patch_nodes(addition, setup, nodes).effects]

    up_to = range(1, ans + 1)
    clean_value = metric_of(addition, setup, setup.clean)
    for layer in range(2):
        heads = [f"a{layer}.{h}" for h in range(4)]
        before = "x0.pre" if layer == 0 else "x0.post"  # x1.pre by the alias rule
        attn, post = alone([Node(f"attn{layer}", p) for p in up_to]), alone([Node(f"x{layer}.post", p) for p in up_to])
        for p, attn_value, post_value in zip(up_to, attn, post):
            assert together([Node(h, p) for h in heads]) == pytest.approx(attn_value, abs=1e-4), (layer, p)
            assert together([Node(f"x{layer}.mid", p), Node(f"m{layer}", p)]) == pytest.approx(post_value, abs=1e-4)
        assert sum(abs(v - clean_value) > 1e-2 for v in attn + post) >= 2  # the checks above mean something
        mid = alone([Node(f"x{layer}.mid", ans)])[0]
        assert abs(mid - clean_value) > 1e-2
        assert together([Node(before, ans)] + [Node(h, ans) for h in heads]) == pytest.approx(mid, abs=1e-4)
    every = [Node("x0.post", p) for p in up_to] + [Node(f"a1.{h}", p) for h in range(4) for p in up_to]
    all_mids = patch_cumulative(addition, setup, [Node("x1.mid", p) for p in up_to])
    assert together(every) == pytest.approx(all_mids.steps[-1].metric, abs=1e-4)
    assert all_mids.steps[-1].share == pytest.approx(1.0, abs=1e-4)


def test_cumulative_runs_add_nodes_in_order_and_end_at_the_whole_effect(counting, setup):
    route = [Node("x0.pre", 5), Node("a0.0", 13), Node("a1.0", 14), Node("x1.post", 14)]
    forward = patch_cumulative(counting, setup, [Node("m0", 13), Node("a1.0", 14), Node("m1", 14), route[-1]])
    clean, corrupt = forward.clean, forward.corrupt
    assert forward.order == "forward" and [s.node for s in forward.steps] == ["m0@13", "a1.0@14", "m1@14", "x1.post@14"]
    for k, step in enumerate(forward.steps):
        expected = reference_metric(counting, setup, [Node(s.site, s.position) for s in forward.steps[:k + 1]])
        assert step.metric == pytest.approx(expected, abs=1e-4)
        assert step.moved == pytest.approx(clean - step.metric, abs=1e-6)
    assert forward.steps[-1].share == pytest.approx(1.0, abs=1e-4)
    assert forward.line().startswith("forward [") and forward.line().endswith(f"] of {clean - corrupt:.2f}")
    backward = patch_cumulative(counting, setup, route, reverse=True)
    assert backward.order == "backward" and backward.steps[0].node == "x1.post@14"
    assert backward.steps[0].share == pytest.approx(1.0, abs=1e-4)
    doc = json.loads(backward.to_json())
    assert doc["kind"] == "cumulative" and doc["total"] == pytest.approx(clean - corrupt)
    assert [s["node"] for s in doc["steps"]] == [n.label for n in route[::-1]]


def test_progress_is_reported_and_cancel_stops_between_passes(counting, setup):
    seen = []
    patch_nodes(counting, setup, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(64, 126), (126, 126)]
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        patch_nodes(counting, setup, cancel=stop)


def test_ioi_name_movers_at_end_carry_the_flipped_subject(ioi):
    task = ioi.task
    clean, corrupt = task.parse_query(IOI_CLEAN), task.tokenize(IOI_CORRUPT)
    setup = make_setup(task, clean, corrupt)
    end = task.resolve_position(clean, "END")
    assert setup.answer_position == end
    assert task.vocab.token_strings([setup.answer, setup.corrupt_answer]) == ["␣Mary", "␣John"]
    nodes = [Node(f"a3.{h}", end) for h in range(4)] + [Node("x3.post", end), Node("x0.pre", end - 4)]
    report = patch_nodes(ioi, setup, nodes)
    assert report.clean > 5 and report.corrupt < -5
    for effect, node in zip(report.effects, nodes):
        assert effect.metric == pytest.approx(reference_metric(ioi, setup, [node]), abs=1e-3)
    assert report.effects[4].share == pytest.approx(1.0, abs=1e-4)
    assert report.effects[5].share == pytest.approx(1.0, abs=1e-4)  # S2's token is the whole corruption
    assert max(e.share for e in report.effects[:4]) > 0.3  # a layer-3 head moves the name


# ---- the command -------------------------------------------------------------------------------------
def test_patch_command_prints_the_ranked_table_and_writes_json(tmp_path):
    out = tmp_path / "patch.json"
    done = run_cli("patch", "--model", "counting", "--text", CLEAN, "--flip", "5=a", "--flip", "N=2", "--top", "5",
                   "--json", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "patch counting: clean 'Baiaigiaaggi|g:3E', corrupted at 5 'g' -> 'a', 15 '3' -> '2'"
    assert lines[1].startswith("answer at 14 ':': logit_diff = logit['3'] - logit['2']; clean ")
    assert lines[2].split() == ["node", "label", "patched", "share", "bar"]
    assert "x1.post@14" in done.stdout and "1.0000  ####################" in lines[3]
    assert lines[-1] == f"wrote {out}"
    assert "126 nodes patched one at a time" in done.stdout
    doc = json.loads(out.read_text())
    assert doc["model"] == "counting" and doc["kind"] == "patch" and len(doc["effects"]) == 126
    assert doc["inputs"]["answer"] == "3" and doc["inputs"]["corrupt_answer"] == "2"


def test_patch_command_cumulative(capsys):
    args = ["patch", "--model", "counting", "--text", CLEAN, "--corrupt", "Baiaiaiaaggi|g:2",
            "--nodes", "m0@Q,a1.0@:,x1.post@:", "--cumulative"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "m0@13" in out and out.count("\nforward [") == 1 and "3 nodes patched cumulatively" in out


@pytest.mark.parametrize("args,message", [
    (["--corrupt", "Baiaigiaaggi|g:33"], "the clean input is 17 tokens long and the corrupted one 18"),
    (["--flip", "5=a", "--flip", "N=2", "--nodes", "zz@3"], "unknown site 'zz'"),
    (["--flip", "99=x"], "position 99 is out of range"),
    (["--flip", "5=a"], "both inputs have the answer '3' after position 14"),
    (["--flip", "5=a", "--flip", "N=2", "--cumulative"], "--cumulative patches the --nodes you give"),
    (["--flip", "5=a", "--flip", "N=2", "--reverse"], "--reverse is for --cumulative"),
    (["--flip", "5=a", "--flip", "N=2", "--nodes", "a0.0@Z"], "'Z' is not a position label"),
    (["--flip", "5=a", "--flip", "N=2", "--json", "/no/such/dir/p.json"], "folder /no/such/dir does not exist"),
    (["--flip", "5=a", "--corrupt", "Baiaiaiaaggi|g:2"], "not allowed with argument"),
])
def test_patch_command_bad_input_is_one_line_exit_2(capsys, args, message):
    assert cli_main(["patch", "--model", "counting", "--text", CLEAN, *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


def test_a_parallel_attention_model_patches_without_mid_and_its_block_adds_up(tmp_path):
    """GPT-NeoX: no x{L}.mid node (attention and MLP both read x{L}.pre), every default node matches
    the plain hooked run, and x{L}.post at the answer is x{L}.pre, every head and m{L} together."""
    from tests.engine.helpers import make_text_folder

    model = load_probed(find_model(str(make_text_folder(tmp_path / "neox", "neox", n_ctx=32))))
    task = model.task
    clean = task.parse_query("When Mary went to the store")
    setup = make_setup(task, clean, flip_one(task, clean, 2, "␣John"), answer="␣Mary", corrupt_answer="␣John")
    ans = setup.answer_position
    report = patch_nodes(model, setup)
    assert [(e.site, e.position) for e in report.effects] == \
        [(n.site, n.position) for n in all_nodes(model.config, ans)]
    assert not [e for e in report.effects if e.site.endswith(".mid")] and len(report.effects) == 13 * ans
    for e in report.effects[::5]:
        assert e.metric == pytest.approx(reference_metric(model, setup, [Node(e.site, e.position)]), abs=1e-5)
    clean_value = metric_of(model, setup, setup.clean)
    for layer, before in ((0, "x0.pre"), (1, "x0.post")):
        post = patch_nodes(model, setup, [Node(f"x{layer}.post", ans)]).effects[0].metric
        parts = [Node(before, ans), *(Node(f"a{layer}.{h}", ans) for h in range(4)), Node(f"m{layer}", ans)]
        assert patch_cumulative(model, setup, parts).steps[-1].metric == pytest.approx(post, abs=1e-5)
        assert abs(post - clean_value) > 1e-4  # the check means something
    with pytest.raises(SiteError, match="x1.mid does not exist in a parallel-attention model"):
        parse_node(model.config, task, clean, "x1.mid@3")
