"""Issue #31, item 4: the window's preimage summary says what `query --summary` says, including
the features that are "everywhere", and explains that verdict."""
from __future__ import annotations

from dataclasses import replace

import pytest

from app.results.view import ResultsView
from engine.cli.query_cmds import print_summary
from engine.explain.summary import summarize
from engine.query.types import QueryOptions
from tests.app.fakes import FakeEngine


@pytest.fixture
def kept_everywhere(fake_models):
    """An addition result at a1.2 / A2 where F2 and S2 are kept by 9 in 10 candidates, within
    epsilon and outside alike (the decoder keeps them), and nothing else is shared."""
    engine = FakeEngine()
    inv = engine.load_inverter("fake-addition")
    result = engine.run_query(inv, "B615+861=1476E", "a1.2", "A2", QueryOptions(candidates=1024, seed=1))
    names = [name for name, _ in result.features]
    kept = (1 << names.index("F2")) | (1 << names.index("S2"))
    samples = [replace(s, agrees=kept if i % 10 else 0, multiplicity=1) for i, s in enumerate(result.samples)]
    return replace(result, samples=samples)


def test_the_summary_names_features_kept_everywhere_as_the_command_line_does(qtbot, kept_everywhere, capsys):
    print_summary(kept_everywhere)
    cli = capsys.readouterr().out
    everywhere = [f for f in summarize(kept_everywhere).features if f.verdict == "everywhere"]
    assert {f.name for f in everywhere} == {"F2", "S2"}
    assert all(line.endswith("everywhere") for line in cli.splitlines() if line.split()[0] in ("F2", "S2"))

    view = ResultsView()
    qtbot.addWidget(view)
    view.show_result(kept_everywhere)
    text = view.preimage.text()
    for f in everywhere:
        assert f"{f.name} = {f.query_value} in {f.share:.0%}" in text
    assert "everywhere" in text and "nearly every candidate" in text  # the verdict and what it means
    tip = view.preimage.toolTip()
    for f in summarize(kept_everywhere).features:  # every row of the command line's table
        assert (f"<td>{f.name}</td><td>{f.query_value}</td><td align=right>{f.share:.0%}</td>"
                f"<td align=right>{f.base_rate:.0%}</td><td>{f.verdict}</td>") in tip
