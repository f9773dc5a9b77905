"""A patching run drawn over the model diagram, and the words around it. No widgets.

Each node is filled by its share of the effect: a sequential scale from white (0) to a strong
orange (1, the node carries the whole difference by itself), teal for a negative share (the
patch moves the answer the other way), no fill under 1% so the untouched nodes stay quiet.
Orange and teal stay clear of the selection blue, the prob_diff blue/red, the flow graph's
violet and its yellow-green lens. Only the strongest nodes get a label, the share in percent
without the sign ("96"): on a counting input a dozen nodes carry the effect, and labels on all
126 would bury them; a "%" would run a narrow column's MLP label into its neighbour's node.
x{L}.post and x{L+1}.pre are one vector drawn twice; both are painted.
"""
from __future__ import annotations

import math
from html import escape

from app.diagram.layout import DiagramOverlay
from app.style import css, muted_css, outline, scene_background
from engine.probed.sites import aliases

POSITIVE_SCALE = ((0.0, (255, 255, 255)), (0.25, (253, 208, 162)), (0.5, (253, 141, 60)),
                  (0.75, (230, 85, 13)), (1.0, (166, 54, 3)))  # ColorBrewer Oranges
NEGATIVE_SCALE = ((0.0, (255, 255, 255)), (0.5, (128, 205, 193)), (1.0, (1, 102, 94)))  # BrBG's teal side
NO_FILL_BELOW = 0.01
LABEL_AT_LEAST = 0.25  # |share| a node needs for a label
MOST_LABELS = 10


def _mix(scale, k: float) -> tuple[int, int, int]:
    for (k0, c0), (k1, c1) in zip(scale, scale[1:]):
        if k <= k1:
            t = (k - k0) / (k1 - k0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))
    return scale[-1][1]


def share_colour(share: float | None) -> str | None:
    """'#rrggbb' for a share (clamped to [-1, 1]); None for no share or one under 1%."""
    if share is None or not math.isfinite(share) or abs(share) < NO_FILL_BELOW:
        return None
    r, g, b = _mix(POSITIVE_SCALE if share > 0 else NEGATIVE_SCALE, min(abs(share), 1.0))
    return f"#{r:02x}{g:02x}{b:02x}"


def percent(share: float | None) -> str:
    """'100%', '−12%'; a share that rounds to zero is '0%', never '−0%'."""
    if share is None or not math.isfinite(share):
        return "–"
    return "0%" if round(share * 100) == 0 else f"{share:.0%}".replace("-", "−")


def number(value: float, metric: str) -> str:
    """A metric value with a real minus sign: logit differences to 2 places, probabilities to 3."""
    return f"{value:.3f}" if metric == "prob" else f"{value:.2f}".replace("-", "−")


def metric_name(report) -> str:
    return f"p({report.inputs.answer!r})" if report.inputs.metric == "prob" else "logit diff"


def node_tooltip(report, effect) -> str:
    metric = report.inputs.metric
    return "\n".join([
        f"patching: {effect.site} @ {effect.position} {effect.position_label!r}",
        f"{metric_name(report)} when patched: {number(effect.metric, metric)} "
        f"(clean {number(report.clean, metric)}, corrupt {number(report.corrupt, metric)})",
        f"share of the effect: {percent(effect.share)}",
    ])


def patch_overlay(report, n_layers: int) -> DiagramOverlay:
    """Fills for every node with a share of 1% or more, labels on the strongest, a tooltip on all."""
    overlay = DiagramOverlay()
    strong = [e for e in report.ranked() if e.share is not None and abs(e.share) >= LABEL_AT_LEAST]
    strong.sort(key=lambda e: -abs(e.share))
    labelled = {(e.site, e.position) for e in strong[:MOST_LABELS]}
    for effect in report.effects:
        colour = share_colour(effect.share)
        for short in aliases(effect.site, n_layers):
            key = (short, effect.position)
            overlay.tooltips[key] = node_tooltip(report, effect)
            if colour:
                overlay.colors[key] = colour
            if (effect.site, effect.position) in labelled:
                overlay.labels[key] = percent(effect.share).rstrip("%")
    return overlay


def header_html(report) -> str:
    """"clean logit diff 14.95 · corrupt −18.12", and the set-up under it in grey."""
    i, metric = report.inputs, report.inputs.metric
    words = i.metric_words().replace(" - ", " − ")
    changes = ", ".join(f"{p} {i.clean_tokens[p]!r}→{i.corrupt_tokens[p]!r}" for p in i.differing[:4])
    if len(i.differing) > 4:
        changes += f" and {len(i.differing) - 4} more"
    none = " · the two runs agree: no effect to share out" if all(e.share is None for e in report.effects) else ""
    return (f"<b>clean {escape(metric_name(report))} {number(report.clean, metric)} · "
            f"corrupt {number(report.corrupt, metric)}</b>{escape(none)}<br>"
            f"<span style='color:{muted_css()}'>answer at {i.answer_position} {escape(repr(i.answer_label))}: "
            f"{escape(words)} · corrupted at {escape(changes)} · {len(report.effects)} nodes, "
            f"{report.passes} passes, {report.seconds:.2f} s</span>")


def legend_html() -> str:
    """The colour scale in words: swatches at 0, 25, 50, 75 and 100%, teal for negative."""
    def swatch(colour: str) -> str:
        return f"<span style='background:{colour}; border:1px solid {css(outline())}'>&nbsp;&nbsp;&nbsp;</span>"

    steps = "".join(swatch(share_colour(k) or css(scene_background())) for k in (0.0, 0.25, 0.5, 0.75, 1.0))
    return (f"share of the effect: 0% {steps} 100% · {swatch(share_colour(-1.0))} negative (moves it back) · "
            "no fill: under 1% · labels: the strongest nodes' share in %")
