"""The tokenizer seam: the character tokenizer fills the protocol, inputs are cut and samples
are told apart by token ids, and shared special ids (GPT-2's one id for BOS, EOS and PAD) cut
the same way as distinct ones."""
from types import SimpleNamespace

import pytest

from engine.query.types import QueryAccumulator, QueryChunk, QueryResult, SampleResult
from engine.tasks import TASKS, TaskInputError
from engine.tasks.base import Task
from engine.text import CharTokenizer, Tokenizer, TokenizerInputError


def test_the_character_tokenizer_fills_the_protocol():
    tok = CharTokenizer("abBEP", specials="BEP")
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == 5 and tok.special_ids == {2, 3, 4}
    assert tok.encode("Bab") == [2, 0, 1] and tok.decode([2, 0, 1]) == "Bab"
    assert tok.token_strings([1, 0]) == ["b", "a"] and tok.strings() == list("abBEP")
    assert tok.token_id("a") == 0 and tok.token_id("ab") is None and tok.token_id("z") is None
    with pytest.raises(TokenizerInputError, match="'z'.*allowed: abBEP"):
        tok.encode("az")
    with pytest.raises(ValueError, match="special characters not in the vocabulary"):
        CharTokenizer("ab", specials="B")


def test_a_task_reports_the_tokenizer_complaint_as_bad_input():
    with pytest.raises(TaskInputError, match="characters not in the vocabulary: '#'"):
        TASKS["addition"].parse_query("12#+345=")


@pytest.mark.parametrize("task", list(TASKS.values()), ids=list(TASKS))
def test_cut_keeps_one_input_and_drops_padding(task):
    ids = task.parse_query(task.examples()[0])
    padded = task.pad(ids)
    assert task.cut(padded) == ids
    assert task.detokenize(padded) == task.vocab.decode(ids)
    assert task.query_text(padded) + task.vocab.strings()[task.eos_id] == task.vocab.decode(ids)


def test_cut_works_when_bos_eos_and_pad_share_an_id():
    shared = SimpleNamespace(bos_id=0, eos_id=0, pad_id=0)  # GPT-2: <|endoftext|> is all three
    assert Task.cut(shared, [0, 5, 6, 0, 0, 0]) == [0, 5, 6, 0]
    assert Task.cut(shared, [0, 5, 6]) == [0, 5, 6]  # ran to the end of the context
    distinct = SimpleNamespace(bos_id=1, eos_id=2, pad_id=3)
    assert Task.cut(distinct, [1, 7, 2, 3]) == [1, 7, 2] and Task.cut(distinct, [1, 7, 3, 3]) == [1, 7]


def _sample(text, tokens, distance, multiplicity=1):
    return SampleResult(text=text, tokens=tokens, labels=[""] * len(tokens), multiplicity=multiplicity,
                        distance=distance, compared_position=1, position_distances=[distance] * len(tokens),
                        temperature=1.0, noise=0.0, fact="", well_formed=True, pieces=[text] * len(tokens))


def test_samples_are_distinct_by_token_ids_not_by_text():
    header = QueryResult("m", "t", "q", [0], [""], 0, "x0.post", "hook", "euclidean", 0.1, 3, [])
    acc = QueryAccumulator(header)
    # "ab" as one token and as two tokens decode alike but are different inputs to the model
    acc.add(QueryChunk([_sample("ab", [7], 0.2), _sample("ab", [1, 2], 0.05)], 2, 3, 0.0))
    acc.add(QueryChunk([_sample("ab", [7], 0.2)], 3, 3, 0.0))
    result = acc.result()
    assert [(s.tokens, s.multiplicity, s.rank) for s in result.samples] == [([1, 2], 1, 1), ([7], 2, 2)]
    assert result.candidates_done == 3 and result.in_epsilon_count == 1
