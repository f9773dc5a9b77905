"""Tasks: token ids, round trips, grammar checks, labels and the data split."""
import numpy as np
import pytest

from engine.tasks import AdditionTask, CountingTask, TaskInputError, get_task

counting, addition = CountingTask(), AdditionTask()


def test_paper_token_ids():
    ids = counting.vocab
    assert [ids.id_of(c) for c in "az19|:BEP"] == [0, 25, 26, 34, 35, 36, 37, 38, 39]
    ids = addition.vocab
    assert [ids.id_of(c) for c in "09B+=EP"] == [0, 9, 10, 11, 12, 13, 14]


@pytest.mark.parametrize("task,text", [(counting, "Bvvzccvczvvvzvcvc|v:8E"), (addition, "B615+861=1476E")])
def test_tokenise_round_trip(task, text):
    ids = task.tokenize(text)
    assert task.detokenize(ids) == text
    padded = task.pad(ids)
    assert len(padded) == task.n_ctx and task.detokenize(padded) == text


def test_query_without_bos_and_eos_is_completed():
    assert counting.normalize("aab|a:2") == "Baab|a:2E"
    assert addition.normalize(" B615+861=1476 ") == "B615+861=1476E"


@pytest.mark.parametrize("text,ok,right", [
    ("Baiaigiaaggi|g:3E", True, True),
    ("Baiaigiaaggi|g:4E", True, False),
    ("Baiaigiaaggi|x:1E", False, False),  # query letter not among the letters
    ("Baabb|a:2E", False, False),  # only 2 distinct letters
    ("Baaaaaaaaaabc|a:9E", False, False),  # a letter 10 times
    ("Babc|a1E", False, False),
])
def test_counting_grammar(text, ok, right):
    v = counting.check(text)
    assert (v.well_formed, v.answer_correct) == (ok, right)
    assert bool(v.reason) == (not ok)


@pytest.mark.parametrize("text,ok,right", [
    ("B615+861=1476E", True, True),
    ("B615+861=1477E", True, False),
    ("B015+861=876E", False, False),
    ("B615+861E", False, False),
    ("B61+861=922E", False, False),
])
def test_addition_grammar(text, ok, right):
    v = addition.check(text)
    assert (v.well_formed, v.answer_correct) == (ok, right)


def test_position_labels():
    ids = counting.tokenize("Baiaigiaaggi|g:3")
    labels = counting.position_labels(ids)
    assert labels[0] == "B" and labels[-5:] == ["|", "Q", ":", "N", "E"] and labels[1:4] == ["a", "i", "a"]
    assert counting.resolve_position(ids, ":") == 14
    ids = addition.tokenize("B615+861=1476")
    assert addition.position_labels(ids) == ["B", "F1", "F2", "F3", "+", "S1", "S2", "S3", "=",
                                             "A1", "A2", "A3", "A4", "E"]
    assert addition.position_labels(addition.tokenize("B123+456=579"))[9:] == ["A1", "A2", "A3", "E"]
    assert addition.resolve_position(ids, "A2") == 10 and addition.resolve_position(ids, "3") == 3


@pytest.mark.parametrize("task,text,fragment", [
    (counting, "Baiaigiaaggi|g:3X", "not in the vocabulary: 'X'"),
    (counting, "", "empty"),
    (counting, "B" + "a" * 40 + "|a:9", "at most 33"),
    (counting, "Babcc|d:1", "query letter must be one of abc"),
    (addition, "B61+861=922", "three digits"),
    (addition, "B615+861=14+6", "three digits"),
    (addition, "B615+861=1476+", "at most 14"),
])
def test_bad_query_messages(task, text, fragment):
    with pytest.raises(TaskInputError) as e:
        task.parse_query(text)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("position,fragment", [(99, "out of range; this input has positions 0-16"),
                                               ("Z", "not a position label"), ("a", "names several positions")])
def test_bad_positions(position, fragment):
    ids = counting.parse_query("Baiaigiaaggi|g:3")
    with pytest.raises(TaskInputError, match=fragment):
        counting.resolve_position(ids, position)


def test_unknown_task():
    with pytest.raises(TaskInputError, match="known tasks: counting, addition"):
        get_task("parity")


def test_addition_split_is_complete_deterministic_and_disjoint():
    a, b = addition.split(0), addition.split(0)
    assert len(a.train) == 607_500 and len(a.test) == 202_500
    assert np.array_equal(a.train, b.train)
    train = {r.tobytes() for r in a.train}
    assert not any(r.tobytes() in train for r in a.test[:20000])
    texts = [addition.detokenize(r) for r in a.test[:500]]
    assert all(addition.check(t).answer_correct for t in texts)


def test_counting_split_sizes_determinism_and_grammar():
    s = counting.split(0)
    assert len(s.train) == 1_170_000 and len(s.test) == 390_000
    assert np.array_equal(s.test[:1000], counting.split(0).test[:1000])
    assert all(counting.check(counting.detokenize(r)).answer_correct for r in s.test[:2000])
    # 2,600 letter triples x 200 count triples x 3 query letters: every triple appears 600 times
    rows = np.concatenate([s.train, s.test])
    letters = rows[:, 1:28]
    masks = np.bitwise_or.reduce(np.where(letters < 26, np.left_shift(1, np.minimum(letters, 25)), 0), axis=1)
    triples, counts = np.unique(masks, return_counts=True)
    assert len(triples) == 2600 and set(counts) == {600}


def test_random_inputs_are_well_formed_and_seeded():
    for task in (counting, addition):
        x = task.random_inputs(300, np.random.default_rng(3))
        assert np.array_equal(x, task.random_inputs(300, np.random.default_rng(3)))
        assert all(task.check(task.detokenize(r)).answer_correct for r in x)


def test_decoder_positions_follow_the_paper():
    ids = np.array([counting.pad(counting.tokenize("Baiaigiaaggi|g:3"))])
    pos = np.flatnonzero(counting.decoder_positions(ids)[0])
    assert [counting.position_labels(ids[0])[p] for p in pos] == ["Q", ":", "N"]
    ids = np.array([addition.pad(addition.tokenize("B615+861=1476"))])
    assert addition.decoder_positions(ids)[0].sum() == 12  # every position but BOS, EOS, PAD
