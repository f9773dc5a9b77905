"""What a local-search result says, in the results view: the flip test instead of the base-rate summary.

The decoder's samples are read against their base rates (engine/explain/summary.py); the local
search's samples are edits of the query, so their base rates say nothing. Their reading is the
flip test (engine/explain/flips.py): a feature the search changed often and that never stayed
within epsilon is "required"; one that stayed is "can change". The line is FlipTest.line(), as
`query --summary` prints it, the tooltip the whole table with the thresholds.
"""
from __future__ import annotations

from html import escape

from app.style import CAN_CHANGE, MUST_KEEP, error_css, muted_css, swatch_html


def is_search(result) -> bool:
    return result is not None and getattr(result, "sampler", "decoder") == "search"


def flip_html(test) -> str:
    """The flip test's line (verdicts in bold), its warning, and the key of the token map above."""
    line = escape(test.line())
    for verdict in ("required", "can change"):
        line = line.replace(f" {verdict} (", f" <b>{verdict}</b> (")
    warning = f"<br><span style='color:{error_css()}'>{escape(test.warning)}</span>" if test.warning else ""
    key = (f" <span style='color:{muted_css()}'>· query tokens:</span> {swatch_html(MUST_KEEP, 'must&nbsp;keep')} "
           f"{swatch_html(CAN_CHANGE, 'can&nbsp;change')}")
    return line[:1].upper() + line[1:] + key + warning


def flip_tooltip(test) -> str:
    """Every feature's changes and verdict, as `query --summary` prints them, and the thresholds."""
    from engine.explain.flips import MIN_CHANGES, REQUIRED_SHARE

    rows = "".join(f"<tr><td>{escape(f.name)}</td><td>{escape(str(f.query_value))}</td>"
                   f"<td align=right>{f.changed:,}</td><td align=right>{f.within:,}</td><td>{f.verdict}</td></tr>"
                   for f in test.features)
    warning = f"<p><b>Warning</b>: {escape(test.warning)}</p>" if test.warning else ""
    return (f"<p>Flip test over {test.samples:,} well-formed samples of the local search "
            f"({test.within:,} within ε).</p>"
            "<table cellpadding=2><tr><th align=left>feature</th><th align=left>query</th><th>changed</th>"
            f"<th>within ε</th><th align=left>verdict</th></tr>{rows}</table>"
            f"<p><b>required</b> (a token: <b>must keep</b>): changed at least {MIN_CHANGES} times and still "
            f"within ε at most {REQUIRED_SHARE:.0%} of those. <b>can change</b>: changed that often and within ε "
            f"more. <b>too few changes</b>: under {MIN_CHANGES}, no reading. A feature held only jointly with "
            f"another reads as each part required.</p>{warning}"
            "<p>The base rates of the decoder's summary say nothing for the search: its samples are edits of "
            "the query.</p>")


def sampler_words(result) -> str:
    """A short phrase for the run's title: which source drew the samples."""
    return "local search" if is_search(result) else "decoder"


def sampler_tooltip(result) -> str:
    """The source's settings in words, for the title's tooltip."""
    if is_search(result):
        return result.sampler_settings or "local search"
    parts = [f"schedule (temperature:noise) {result.schedule}" if result.schedule else "",
             f"seed {result.seed}", f"precision {result.precision}" if result.precision else ""]
    return "sampled from the decoder: " + ", ".join(p for p in parts if p)


def search_legend() -> str:
    """The legend above a search result's table: its samples have no token colours."""
    return ("Local search: samples are edits of the query, no token colours (they need a decoder) · "
            "edits: tokens changed · <s>struck through</s>: malformed · bar: D / 0.5")
