"""The causal check's words and colours, without a window: the share scale, the overlay's
aliases and labels, the header, and what the panel says about a corrupted input."""
from __future__ import annotations

from app.patching.inputs import corrupt_note, flipped_text, position_items
from app.patching.overlay import MOST_LABELS, header_html, patch_overlay, share_colour
from engine.patching.report import PatchEffect, PatchInputs, PatchReport
from engine.tasks import get_task

QUERY = "Baiaigiaaggi|g:3"


def _report(shares: dict[tuple[str, int], float | None]) -> PatchReport:
    task = get_task("counting")
    ids = task.parse_query(QUERY)
    labels = task.position_labels(ids)
    inputs = PatchInputs(task.vocab.token_strings(ids), task.vocab.token_strings(ids), labels, [5, 15], 14,
                         "3", "2", "logit_diff")
    effects = [PatchEffect(f"{s}@{p}", s, p, labels[p], 14.95 - 33.07 * (share or 0.0), share)
               for (s, p), share in shares.items()]
    return PatchReport(inputs, 14.95, -18.12, effects, 0.02, 4)


def test_the_share_scale_runs_from_white_to_orange_and_teal_below_zero():
    assert share_colour(None) is None and share_colour(0.0) is None and share_colour(0.004) is None
    assert share_colour(1.0) == "#a63603" and share_colour(1.7) == "#a63603"  # an overshoot is as strong
    assert share_colour(0.02).startswith("#ff") and share_colour(0.5) == "#fd8d3c"
    assert share_colour(-1.0) == "#01665e" and share_colour(-0.5) != share_colour(0.5)
    lightness = [sum(int(share_colour(k)[i:i + 2], 16) for i in (1, 3, 5)) for k in (0.1, 0.3, 0.6, 0.9)]
    assert lightness == sorted(lightness, reverse=True)  # stronger share, darker fill


def test_the_overlay_paints_both_names_of_a_vector_and_labels_only_the_strongest():
    shares = {("x0.post", 13): 1.0, ("a1.0", 14): 0.6, ("m0", 3): -0.4, ("x0.pre", 2): 0.0, ("m1", 7): 0.1}
    shares.update({("a0.0", p): 0.9 for p in range(1, 13)})
    overlay = patch_overlay(_report(shares), n_layers=2)
    assert overlay.colors[("x0.post", 13)] == overlay.colors[("x1.pre", 13)] == share_colour(1.0)
    assert overlay.labels[("x0.post", 13)] == overlay.labels[("x1.pre", 13)] == "100"
    assert overlay.colors[("m0", 3)] == share_colour(-0.4)
    assert ("x0.pre", 2) not in overlay.colors and ("x0.pre", 2) in overlay.tooltips
    assert ("m1", 7) in overlay.colors and ("m1", 7) not in overlay.labels  # too weak for a label
    labelled = {k for k in overlay.labels if k[0] != "x1.pre"}
    assert len(labelled) == MOST_LABELS and ("a1.0", 14) not in labelled  # 1.0 and nine 0.9s come first
    assert "share of the effect: 100%" in overlay.tooltips[("x1.pre", 13)]


def test_the_header_says_clean_and_corrupt_with_real_minus_signs():
    html = header_html(_report({("x1.post", 14): 1.0}))
    assert "clean logit diff 14.95 · corrupt −18.12" in html
    assert "answer at 14 &#x27;:&#x27;" in html and "5 &#x27;g&#x27;→&#x27;g&#x27;" in html


def test_the_panel_notes_where_inputs_differ_or_why_they_cannot_be_compared():
    task = get_task("counting")
    clean = task.parse_query(QUERY)
    assert corrupt_note(task, clean, "Baiaiaiaaggi|g:2") == ("differs at 5 'g'→'a', 15 '3'→'2'", True)
    note, ok = corrupt_note(task, clean, "Baiaigiaaggi|g:33")
    assert not ok and "18 tokens long and the query 17" in note and "\n" not in note
    assert corrupt_note(task, clean, "Baia#")[1] is False
    assert "same as the query" in corrupt_note(task, clean, QUERY)[0]
    ids, text = flipped_text(task, clean, 5, 0)
    assert text == "Baiaiaiaaggi|g:3" and ids[5] == 0
    assert position_items(["B", "a"]) == ["0 'B'", "1 'a'"]
