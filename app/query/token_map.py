"""The local search's flip test per query token, drawn under the token strip (TokenStrip.set_flips).

Follows the results view: a search result shown (partial or whole, at any epsilon) puts its
per-token verdicts under the query while the query in the editor is the one that result ran;
a decoder's result, a cleared view or another query takes them away.
"""
from __future__ import annotations

from PySide6.QtCore import QObject


class TokenMap(QObject):
    def __init__(self, results, editor, parent=None):
        super().__init__(parent)
        self.results, self.editor = results, editor
        results.flipsChanged.connect(self.refresh)
        editor.queryChanged.connect(self.refresh)

    def refresh(self, *_args) -> None:
        flips, result = self.results.flips, self.results.result()
        same_query = result is not None and self.editor.tokens() == list(result.query_tokens)
        self.editor.strip.set_flips(flips.tokens if flips is not None and same_query else None)
