"""File > Export as notebook: the shown result becomes a notebook whose code re-runs it with the
query's own model, site, position, options and seed; nothing shown, nothing written."""
import nbformat

from tests.app.test_main_window import run_and_wait


def code_of(path) -> str:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_export_as_notebook_writes_the_shown_query_and_its_options(qtbot, window, tmp_path):
    w = window
    assert w.export_notebook(str(tmp_path / "none.ipynb")) is None  # nothing run yet
    assert "Nothing to export" in w.statusBar().currentMessage() and not (tmp_path / "none.ipynb").exists()
    w.options_bar.seed.setValue(7)
    run_and_wait(qtbot, w)
    result = w.results.result()
    written = w.export_notebook(str(tmp_path / "shown"))
    assert written == tmp_path / "shown.ipynb"
    code = code_of(written)
    assert f"SITE = {result.site_short!r}" in code and f"POSITION = {result.query_position!r}" in code
    assert f"TEXT = {w.editor.text()!r}" in code and "    seed=7," in code
    assert f"    candidates={result.candidates!r}," in code
    assert "result = run_query(inv, TEXT, SITE, POSITION, OPTIONS)" in code
    assert "Wrote a notebook" in w.statusBar().currentMessage()
    assert w.export_notebook_action.text() == "Export as &notebook…"
