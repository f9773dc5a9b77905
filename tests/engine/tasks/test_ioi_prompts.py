"""The IOI prompt distribution: the paper's counts, balanced orders, a held-out split that holds out
what it says, and a grammar check every generated prompt passes and wrong ones fail."""
import numpy as np
import pytest

from engine.tasks.ioi_prompts import ioi_split, load_ioi, parse, sample_prompts


@pytest.fixture(scope="module")
def data():
    return load_ioi()


def test_the_distribution_has_the_papers_counts(data):
    assert len(data.templates) == 60 and len(set(data.names)) == 99
    assert len(data.places) == 8 and len(data.objects) == 8
    assert [t.order for t in data.templates].count("BABA") == 30
    for baba, abba in zip(data.templates[:30], data.templates[30:]):
        # the ABBA twin: the first [B] and the first [A] swapped
        i, j = baba.pattern.index("[B]"), baba.pattern.index("[A]")
        assert i < j and abba.pattern == baba.pattern[:i] + "[A]" + baba.pattern[i + 3:j] + "[B]" + baba.pattern[j + 3:]
        assert baba.pattern.endswith("[A]")


def test_prompts_are_balanced_named_as_their_template_says_and_parse(data):
    prompts = sample_prompts(data, 600, np.random.default_rng(0))
    assert sum(p.order == "ABBA" for p in prompts) == 300
    assert len({p.template for p in prompts}) > 50
    for p in prompts:
        assert p.io != p.s and p.text.endswith(" " + p.io)
        cut = {label: p.text[a:b] for label, (a, b) in p.spans.items()}
        assert (cut["IO"], cut["ANSWER"], cut["S1"], cut["S2"], cut["END"]) == (p.io, p.io, p.s, p.s, "to")
        assert (p.spans["IO"] < p.spans["S1"]) == (p.order == "ABBA")
        assert p.prompt == p.text[: p.spans["ANSWER"][0]].rstrip()
        parsed = parse(data, p.text)
        assert parsed is not None and (parsed.io, parsed.s, parsed.place, parsed.obj) == (p.io, p.s, p.place, p.obj)
    again = sample_prompts(data, 600, np.random.default_rng(0))
    assert [p.text for p in again] == [p.text for p in prompts]  # seeded


def test_the_held_out_split_holds_out_templates_and_names(data):
    split = ioi_split(data, seed=0)
    assert set(split.train_templates).isdisjoint(split.test_templates)
    assert len(split.train_templates) + len(split.test_templates) == 60 and len(split.test_templates) == 12
    pairs = {t % 30 for t in split.test_templates}
    assert all(p in split.test_templates and p + 30 in split.test_templates for p in pairs)  # twins together
    assert set(split.train_names).isdisjoint(split.test_names) and len(split.test_names) == 20
    rng = np.random.default_rng(1)
    train = sample_prompts(data, 400, rng, split, "train")
    assert all(p.template in split.train_templates for p in train)
    assert all(p.io not in split.held_out_io(p.order) for p in train)  # never the IO of their held-out order
    assert any(p.io in split.test_names for p in train)  # but the IO of the other order: trained as answers
    assert set(split.held_out_io("ABBA")) | set(split.held_out_io("BABA")) == set(split.test_names)
    assert set(split.held_out_io("ABBA")).isdisjoint(split.held_out_io("BABA"))
    test = sample_prompts(data, 300, rng, split, "test")
    assert sum(p.order == "ABBA" for p in test) == 150
    held_template = [p.template in split.test_templates for p in test]
    held_name = [p.io in split.held_out_io(p.order) for p in test]
    assert all(a or b for a, b in zip(held_template, held_name))  # every test prompt holds something out
    assert sum(held_template) == 200 and sum(held_name) >= 200  # a third each way, a third both (and chance)
    assert sum(a and b for a, b in zip(held_template, held_name)) >= 100
    assert ioi_split(data, seed=1).test_names != split.test_names


def test_the_grammar_check_refuses_prompts_that_break_the_template(data):
    p = sample_prompts(data, 1, np.random.default_rng(3))[0]
    other = next(n for n in data.names if n not in (p.io, p.s))
    a, b = p.spans["S2"]
    assert parse(data, p.text[:a] + other + p.text[b:]) is None  # S named once, a third name instead
    a, b = p.spans["ANSWER"]
    assert parse(data, p.text[:a] + p.s) is None  # the answer is the subject
    assert parse(data, p.text[:a] + "Zorro") is None  # not one of the 99 names
    assert parse(data, p.text.replace(p.io, p.s)) is None  # IO and S the same name
    assert parse(data, p.text + " again") is None


def test_the_quick_parse_decides_as_the_exact_grammar_does(data):
    """parse() matches loosely and checks the slots against the lists; on prompts and on broken
    ones (each slot swapped for a word outside its list, or for a word of another list) it must
    agree with the exact grammar, whose slots are the lists themselves."""
    from engine.tasks.ioi_prompts import _exact_pattern

    def exact(text):
        for t in data.templates:
            index, m = t.index, _exact_pattern(data, t.index).fullmatch(text.strip())
            if m and m.group("a") != m.group("b"):
                return index, m.group("a"), m.group("b"), m.groupdict().get("place"), m.groupdict().get("obj")
        return None

    texts = []
    for p in sample_prompts(data, 120, np.random.default_rng(5)):
        texts.append(p.text)
        texts.append(p.text.replace(p.place, "the moon") if p.place else p.text + ".")
        texts.append(p.text.replace(p.obj, data.names[0]) if p.obj else p.text + " x")
        texts.append(p.text.replace(p.s, data.places[0]))
    decided = [exact(t) for t in texts]
    assert sum(d is not None for d in decided) >= 120 and sum(d is None for d in decided) >= 120
    for text, want in zip(texts, decided):
        got = parse(data, text)
        assert (got is None) == (want is None), text
        if got is not None:  # [A] is the IO, [B] the subject
            assert (got.template, got.io, got.s, got.place or None, got.obj or None) == want, text
