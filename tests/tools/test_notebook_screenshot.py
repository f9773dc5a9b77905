"""tools/notebook_screenshot.py, which draws the README's docs/notebook.png, still works: an exported
query notebook becomes one self-contained HTML page with nbconvert (no script fetched from the
network), and a headless Chromium, where there is one, photographs it at the asked size."""
import shutil
import struct
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import notebook_screenshot as shot  # noqa: E402


def test_an_exported_notebook_becomes_one_offline_html_page(tmp_path, capsys):
    path = shot.export(tmp_path)
    assert f"wrote {path}" in capsys.readouterr().out
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="engine from somewhere\n")]
    html = shot.to_html(nb)
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert "run_query" in html and "reproduces the export" in html and "engine from somewhere" in html
    assert '<script src="http' not in html  # nothing to fetch: the picture is drawn offline


@pytest.mark.slow
@pytest.mark.skipif(not any(shutil.which(b) for b in shot.BROWSERS), reason="no Chromium on this machine")
def test_a_page_is_photographed_at_the_asked_size(tmp_path):
    page, png = tmp_path / "page.html", tmp_path / "page.png"
    page.write_text("<!DOCTYPE html><html><body><pre>In [1]: print('hi')</pre></body></html>")
    shot.photograph(page, png, width=400, height=300)
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (400, 300)
