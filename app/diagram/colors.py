"""The diagram's colours and its legend, from the palette (made once per palette, not per node)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

from app.style import (
    FLOW_EDGE,
    backdrop,
    data_line,
    faint_line,
    muted_css,
    muted_text,
    neutral,
    node_fill,
    outline,
    resid_fill,
    scene_background,
    selected_band,
    text_color,
)


def legend_html(source=None) -> str:
    """The legend under the diagram, its secondary parts in the palette's muted text."""
    muted = muted_css(source)
    return ("● residual stream &nbsp; ■ written into it (heads, attention, MLP) &nbsp; "
            f"<span style='color:{muted}'>dashed: decoder not trained on this site</span> &nbsp; "
            f"<span style='color:{muted}'>Ctrl+wheel zooms, drag pans, double-click fits; "
            "double-click attn to show or hide its heads</span>")


@dataclass(frozen=True)
class DiagramColors:
    """The diagram's colours, from the palette: made once per palette, not per painted node."""

    background: QColor
    node_fill: QColor
    resid_fill: QColor
    outline: QColor
    untrained: QColor
    label: QColor  # node readouts and tokens, on the background
    muted: QColor  # position labels and row names
    wire: QColor
    resid_wire: QColor
    flow_edge: QColor  # the violet data colour, lightened on a dark background as far as 3:1 needs
    band: QColor
    backdrop: QColor

    @classmethod
    def of(cls, source=None) -> DiagramColors:
        return cls(background=scene_background(source), node_fill=node_fill(source), resid_fill=resid_fill(source),
                   outline=outline(source), untrained=neutral(source), label=text_color(source),
                   muted=muted_text(source), wire=faint_line(source), resid_wire=neutral(source),
                   flow_edge=data_line(FLOW_EDGE, source), band=selected_band(source),
                   backdrop=backdrop(source, 230))
