"""The README's notebook picture (docs/notebook.png): a counting query exported with --notebook,
executed offline by a real kernel (nbclient), converted to HTML by nbconvert (JupyterLab's
template, its styles inlined) and photographed by a headless Chromium.

    .venv/bin/python tools/notebook_screenshot.py [--out docs/notebook.png] [--keep DIR]

Needs nbconvert (requirements.txt) and Chromium (Debian: apt-get install chromium); runs offline.
--keep DIR keeps the notebook, the executed notebook and the HTML there.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY = ["query", "--model", "counting", "--text", "Baiaigiaaggi|g:3", "--site", "x1.post", "--position", ":",
         "--candidates", "64", "--seed", "3"]
WIDTH, HEIGHT = 1100, 2380  # CSS pixels: from the header to the next-step cell that compares another site
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def export(folder: Path) -> Path:
    """The counting query's notebook, written by the command line's --notebook."""
    from engine.cli.main import main

    path = folder / "query.ipynb"
    if main([*QUERY, "--notebook", str(path)]) != 0:
        raise SystemExit("error: the query did not run")
    return path


def execute(path: Path):
    """The notebook run top to bottom by a python3 kernel, outputs kept (nbformat.NotebookNode)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def to_html(nb) -> str:
    """The notebook as one HTML page in JupyterLab's look (styles inlined, no script fetched)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_anchor_links = True
    html, _ = exporter.from_notebook_node(nb)
    # the page asks for MathJax and require.js from a CDN: not needed (no maths, no widgets), and offline
    return "\n".join(line for line in html.splitlines() if "<script src=\"http" not in line)


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("error: no Chromium found (Debian: apt-get install chromium)")


def photograph(html: Path, png: Path, width: int = WIDTH, height: int = HEIGHT) -> None:
    """A headless browser's picture of the page's first width x height CSS pixels."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--force-device-scale-factor=1", f"--user-data-dir={profile}",
                        f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "notebook.png")
    parser.add_argument("--keep", type=Path, help="keep the notebooks and the HTML in this folder")
    args = parser.parse_args(argv)
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        nb = execute(export(folder))
        nbformat.write(nb, folder / "query.executed.ipynb")
        html = folder / "query.html"
        html.write_text(to_html(nb), encoding="utf-8")
        photograph(html, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
