"""docs/api.md cannot drift: every ```python block in it runs, in order, in one namespace (the
blocks build on each other, as a reader would type them), and every public name is on the page."""
import re
from pathlib import Path

import engine

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_every_python_block_on_the_api_page_runs(capsys):
    found = blocks()
    assert len(found) >= 7
    namespace: dict = {"__name__": "api_docs"}
    for i, source in enumerate(found, start=1):
        exec(compile(source, f"docs/api.md block {i}", "exec"), namespace)
    assert "within epsilon" in capsys.readouterr().out


def test_every_public_name_is_documented():
    text = PAGE.read_text(encoding="utf-8")
    assert [name for name in engine.__all__ if f"`{name}" not in text and f" {name}`" not in text
            and f"{name}(" not in text and f", {name}" not in text] == []
