"""Model cards (`CARD.md`): what a model is, how it was made and how good it measured."""
from __future__ import annotations

import os
import platform
from pathlib import Path

from engine.store.safefiles import atomic_write_text


def hardware_summary(device: str = "cpu") -> str:
    """A one-line description of the machine that trained a model."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    threads = torch.get_num_threads()
    where = f"CUDA ({torch.cuda.get_device_name(0)})" if str(device).startswith("cuda") else "CPU"
    return f"{where}; {cpu}, {os.cpu_count()} cores, {threads} torch thread(s); torch {torch.__version__}"


def write_card(folder: Path, sections: dict[str, str], title: str) -> None:
    """Write CARD.md from ordered (heading -> markdown body) sections."""
    parts = [f"# {title}\n"]
    for heading, body in sections.items():
        parts.append(f"## {heading}\n\n{body.strip()}\n")
    atomic_write_text(Path(folder) / "CARD.md", "\n".join(parts))


def probed_card(entry) -> None:
    """CARD.md of a probed model, from the training record in its inversionview.json."""
    from engine.store.folders import read_config

    config = read_config(entry.path)
    if config.get("prompts") == "ioi" and config.get("probed_training", {}).get("held_out"):
        ioi_card(entry.path)  # a language model trained here on the IOI prompts: its own card
        return
    tr = config.get("probed_training", {})
    sch = tr.get("schedule", {})
    pc = entry.probed
    curve = "\n".join(f"| {s} | {sec / 60:.1f} | {loss:.4f} | {acc:.2%} |"
                      for s, sec, loss, acc in tr.get("history", []))
    from engine.tasks import get_task

    task = get_task(entry.task)
    paper, metric = task.paper_result, task.score_name
    write_card(entry.path, {
        "What it is": (
            f"The paper's {entry.task} transformer (InversionView, docs/design.md §3), built as a TransformerLens 4.x "
            f"`TransformerBridge` native model: {pc.n_layers} layers, {pc.n_heads} head(s), d_model {pc.d_model}, "
            f"d_mlp {pc.d_mlp}, n_ctx {pc.n_ctx}, vocabulary {pc.d_vocab} (the paper's token ids), GELU, LayerNorm."),
        "How it was trained": (
            f"AdamW (betas 0.9/0.98, weight decay {sch.get('weight_decay')}), batch {sch.get('batch_size')}, "
            f"peak lr {sch.get('lr')} with {sch.get('warmup')} warm-up steps and cosine decay to "
            f"{sch.get('min_lr_frac')} x peak, {sch.get('steps')} steps, gradient clipping 1.0, batches drawn "
            f"from the 75% training split (seed 0) less a 10,000-input monitoring slice"
            + (f", {sch['balance_lengths']:.0%} of each batch drawn with every input length equally likely"
               if sch.get("balance_lengths") else "")
            + (f", {sch['error_focus']:.0%} drawn toward the input lengths the starting weights got wrong, "
               f"in proportion to their error rate" if sch.get("error_focus") else "")
            + (f", attention scores divided by {sch['attention_temperature']:g} at the start, easing linearly to "
               f"1 at {sch.get('soften_until', 0.7):.0%} of the steps"
               + (f" (layer {', '.join(map(str, sch['soften_layers']))})" if sch.get("soften_layers") else "")
               if sch.get("attention_temperature", 1) != 1 else "")
            + (f"; started from the weights of `{tr['init_from']}`" if tr.get("init_from") else "")
            + ".\n\n"
            f"Command: `{tr.get('command')}`\n\nHardware: {tr.get('hardware')}\n\n"
            f"Training time: {tr.get('seconds', 0) / 60:.1f} minutes."
            + (f"\n\n{tr['notes']}" if tr.get("notes") else "")),
        "Measured quality": (
            f"Held-out 25% split ({task.held_out_size():,} inputs), {metric}: "
            f"**{tr.get('test_accuracy', 0) * 100:.2f}%**. "
            f"Reproduce with `python main.py eval-probed {entry.task}`.\n\n"
            f"The paper reports {paper}."),
        "Training curve (monitoring slice)": "| step | minutes | loss (EMA) | accuracy |\n|---|---|---|---|\n" + curve,
        **decoder_sections(config.get("decoder"), task.agreement_probe()),
    }, title=f"{entry.name}: probed {entry.task} model and its InversionView decoder")


def _recipe(sch: dict, tr: dict) -> str:
    """The training choices beyond the schedule, in words (older records have none of them)."""
    parts = []
    if sch.get("buckets", 1) > 1:
        parts.append(f"a batch with at least 15% padding is sorted by length and run in {sch['buckets']} slices, "
                     "each padded only to its own longest input")
    if sch.get("focus", 0) > 0:
        parts.append(f"{sch['focus']:.0%} of pairs drawn toward the sites the last in-training check "
                     f"(every {sch.get('check_every_s', 0) / 60:g} minutes) found weakest")
    if tr.get("init_from"):
        parts.append(f"started from the decoder of model `{tr['init_from']}`")
    return ("\n\nRecipe: " + "; ".join(parts) + ".") if parts else ""


def _every_nth(rows: list, about: int = 12) -> list:
    """About `about` evenly spaced rows of a curve, always with its last one."""
    picks = rows[:: max(1, len(rows) // about)]
    return picks if picks[-1] is rows[-1] else picks + [rows[-1]]


def decoder_sections(dec: dict | None, probe=None) -> dict[str, str]:
    """The decoder's part of a card: design, training record and measured quality."""
    if not dec:
        return {"Decoder": "None yet: `python main.py train-decoder TASK --model NAME --minutes N` makes one."}
    c, tr = dec["config"], dec.get("training", {})
    sch = tr.get("schedule", {})
    sections = {"Decoder: what it is": (
        f"The conditional decoder of docs/design.md §2: d_model {c['d_model']}, {c['n_layers']} layers, "
        f"{c['n_heads']} heads, {c['n_cond_blocks']} residual MLP blocks on concat(activation, site embedding), "
        f"one prefix key/value slot per layer, tied embeddings. Trained on {c['n_sites']} sites: "
        f"{', '.join(dec['sites'])}."),
        "Decoder: how it was trained": (
            f"Pairs made on the fly from the training split (one site and position per input, 1% BOS), "
            f"AdamW, batch {sch.get('batch_size')}, peak lr {sch.get('lr')}, cosine over a {sch.get('minutes')}-minute "
            f"budget: {tr.get('steps', 0):,} steps, {tr.get('pairs', 0):,} pairs in "
            f"{tr.get('seconds', 0) / 60:.1f} minutes."
            + _recipe(sch, tr)
            + f"\n\nCommand: `{tr.get('command')}`\n\nHardware: {tr.get('hardware')}"
            + (f"\n\n{tr['notes']}" if tr.get("notes") else ""))}
    q = dec.get("quality")
    if q:
        rows = "\n".join(f"| {s['site']} | {s['in_epsilon']:.2f} | {s['well_formed']:.2f} |" for s in q["sites"])
        agree = ""
        if probe is not None and q.get("count_agreement") is not None:
            agree = (f"\n\nAt {probe.where}: {q['count_agreement']:.0%} of {q['count_agreement_n']} in-epsilon "
                     f"samples share {probe.shared}.")
        sections["Decoder: measured quality"] = (
            f"`{q['command']}`: {q['n_queries']} held-out queries per site, one T = 1 sample each, in epsilon = "
            f"D < {q['epsilon']}.\n\n| site | in-epsilon rate | well-formed |\n|---|---|---|\n{rows}\n\n"
            f"**Average in-epsilon rate {q['average']:.2f}**, well-formed samples {q['well_formed']:.0%}.{agree}")
    checks = tr.get("quality", [])
    if checks:
        picks = _every_nth(checks)
        sections["Decoder: quality against training time"] = (
            "In-training checks (the in-epsilon test on training-split queries, "
            f"{sch.get('check_queries', '?')} per site):\n\n"
            "| minutes | pairs | average in-epsilon | well-formed |\n|---|---|---|---|\n" + "\n".join(
                f"| {c['seconds'] / 60:.1f} | {c['pairs']:,} "
                f"| {sum(c['rates'].values()) / max(len(c['rates']), 1):.2f} "
                f"| {c['well_formed']:.0%} |" for c in picks))
    curve = tr.get("history", [])
    if curve:
        picks = _every_nth(curve)
        sections["Decoder: training curve"] = "| step | minutes | loss (EMA) |\n|---|---|---|\n" + "\n".join(
            f"| {st} | {sec / 60:.1f} | {loss:.4f} |" for st, sec, loss in picks)
    return sections


def ioi_card(folder: Path) -> None:
    """CARD.md of the ioi model (a Hugging Face GPT-2 folder trained on the IOI prompts), from its record."""
    from engine.store.folders import read_config

    config = read_config(folder)
    tr = config.get("probed_training", {})
    sch, held = tr.get("schedule", {}), tr.get("held_out", {})
    p = config.get("probed", {})
    curve = "\n".join(f"| {step} | {sec / 60:.1f} | {loss:.4f} | {acc:.2%} |"
                      for step, sec, loss, acc in _every_nth(tr.get("history", [])))
    write_card(folder, {
        "What it is": (
            f"A GPT-2-architecture causal language model (Hugging Face `GPT2LMHeadModel`: {p.get('n_layers')} layers, "
            f"{p.get('n_heads')} heads, d_model {p.get('d_model')}, context {p.get('n_ctx')}, vocabulary "
            f"{p.get('d_vocab')}) trained from scratch on the IOI prompts of Wang et al. 2022 in the InversionView "
            "paper's mixed form (resources/ioi.json: 30 BABA templates and their ABBA twins, 99 names, 8 places, "
            "8 objects), with a byte-level BPE tokenizer trained on the prompts (every name one token with its "
            "leading space, as in GPT-2). The studio opens it like any Hugging Face GPT-2; its record says "
            "`\"prompts\": \"ioi\"`."),
        "How it was trained": (
            f"`{tr.get('command', '?')}`\n\n"
            f"AdamW (betas 0.9/0.98, weight decay {sch.get('weight_decay')}), batch {sch.get('batch_size')} prompts, "
            f"peak lr {sch.get('lr')} with {sch.get('warmup')} warm-up steps and cosine decay to "
            f"{sch.get('min_lr_frac')} x peak, {sch.get('steps')} steps, gradient clipping 1.0; next-token "
            f"cross-entropy over the whole prompt with the answer token weighted {sch.get('answer_weight')} times "
            "more; training-split prompts only (held out: 6 template pairs, and 20 names as the IO of one order "
            f"each). {tr.get('seconds', 0) / 60:.1f} minutes on {tr.get('hardware', '?')}."),
        "Measured quality": (
            f"On {held.get('prompts', '?')} held-out prompts (each with a held-out template, a held-out name as "
            f"IO, or both): IO-name accuracy at END **{held.get('io_accuracy', 0):.2%}**, mean logit difference "
            f"IO - S **{held.get('logit_diff', 0):.2f}** (`python main.py eval-probed ioi` re-measures it).\n\n"
            "| step | minutes | loss | IO accuracy (training-split monitor) |\n|---|---|---|---|\n" + curve),
        **circuit_sections(config.get("circuit")),
        **decoder_sections(config.get("decoder")),
    }, title="ioi: a GPT-2-architecture model that does IOI")


def _heads(values: list, digits: int = 2) -> str:
    """A (layers, heads) grid as a markdown table."""
    n = len(values[0])
    head = "| | " + " | ".join(f"H{h}" for h in range(n)) + " |\n" + "|---" * (n + 1) + "|\n"
    return head + "\n".join(f"| L{layer} | " + " | ".join(f"{v:.{digits}f}" for v in row) + " |"
                             for layer, row in enumerate(values))


def circuit_sections(c: dict | None) -> dict[str, str]:
    """The IOI circuit as `ioi-circuit --record` measured it (engine/circuits/ioi.py)."""
    if not c:
        return {}
    movers = ", ".join(c["name_movers"]) or "none"
    text = (f"`{c['command']}`, {c['prompts']} held-out prompts (IO accuracy {c['accuracy']:.1%}, mean logit "
            f"difference IO - S {c['logit_diff']:.2f}).\n\n"
            f"Direct logit attribution of each head at END onto IO - S (final norm frozen at END):\n\n"
            f"{_heads(c['dla'])}\n\nIts part on the S logit, against the mean over all names (negative: the head "
            f"suppresses S):\n\n{_heads(c['on_s'])}\n\nAttention from END to S2:\n\n{_heads(c['attention']['END>S2'])}"
            f"\n\nAttention from END to IO:\n\n{_heads(c['attention']['END>IO'])}")
    if c.get("patch_end"):
        text += (f"\n\nActivation patching with S2 replaced by the IO name (and the answer by S), "
                 f"{c['patched_prompts']} prompts, share of IO - S each head carries at END:\n\n"
                 f"{_heads(c['patch_end'])}\n\nThe residual stream at S2: " + ", ".join(
                     f"x{layer}.post {v:.2f}" for layer, v in enumerate(c["patch_resid_s2"])) + ".")
    text += f"\n\nLargest direct effect on IO - S: {movers}; brings the names to END: {c['copier']}."
    sections = {"The circuit": text}
    if c.get("inversion"):
        rows = "\n".join(
            f"| {r['site']} | {r['position']} | {'the same label' if r.get('same_label') else 'any position'} | "
            f"{r['in_epsilon']:.0%} | {r['io_share']:.0%} ({r['io_base']:.0%}) | "
            f"{r['s_share']:.0%} ({r['s_base']:.0%}) | {r['answered']} of {r['queries']} |" for r in c["inversion"])
        sections["What InversionView reads there"] = (
            "Share of the candidates within epsilon (1 - cosine < 0.1) whose IO (or S) name is the query's, "
            "pooled over held-out queries (in brackets: the same share among all candidates), with samples "
            "compared at any position (the paper's rule) or only where they have the query position's label:\n\n"
            "| site | at | compared at | within epsilon | IO | S | queries with any within epsilon |\n"
            "|---|---|---|---|---|---|---|\n"
            + rows)
    return sections
