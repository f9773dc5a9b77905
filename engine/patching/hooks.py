"""Reading the corrupted run's activations, and the forward hooks that write them into clean rows.

A patched pass runs the clean input as a batch of rows; row r has its own set of nodes patched
(one node per row for `patch_nodes`, the first k nodes in row k for `patch_cumulative`), so one
forward pass answers many patches. Every hook writes only its rows and positions; nothing else
in the pass changes, and the model's weights are never touched.

Where each node is written (docs/design.md §3 hook names):

| site | written at | what |
|---|---|---|
| x0.pre, x{L}.post, m{L}, attn{L} | its own hook | the whole vector at the position |
| a{L}.{H} | `blocks.L.attn.hook_z`, head H | head H's z (its output is z W_O[H]) |
| x{L}.mid | `blocks.L.hook_attn_out` | corrupt mid - this row's resid_pre (see below) |

Why x{L}.mid is not written at its own hook: in TransformerLens bridges `hook_resid_mid` is the
input hook of ln2 (`blocks.L.ln2.hook_in`), so writing there changes what the MLP reads but not
the residual stream that goes on to x{L}.post (measured on the bundled models). Since
resid_mid = resid_pre + attn_out in the row, writing corrupt mid - resid_pre into the attention
output makes resid_mid the corrupt mid for both. The tests check this against a patch written
the other way (at ln2's input, the difference added to the MLP output) and the block's
arithmetic (x{L}.mid and m{L} together are x{L}.post; at the answer position x{L}.mid is x{L}.pre
and every head of layer L).
"""
from __future__ import annotations

import torch

from engine.patching.nodes import Node
from engine.probed.sites import Site, get_site, hooked_pass, make_site

# Rows of one patched pass: each row's logits (T x d_vocab floats) are kept until the metric is
# read, so a wide vocabulary takes fewer rows (GPT-2's 50k at 20 tokens: 49 rows, 200 MB).
MAX_ROWS = 64
MAX_LOGIT_FLOATS = 50_000_000


def rows_per_pass(n_tokens: int, d_vocab: int) -> int:
    return max(1, min(MAX_ROWS, MAX_LOGIT_FLOATS // max(1, n_tokens * d_vocab)))


def site_of(config, node: Node) -> Site:
    return get_site(config, node.site)


def read_corrupt(bridge, config, ids, nodes: list[Node]) -> tuple[dict, torch.Tensor]:
    """One hooked pass over the corrupted input: {hook name: (T, ...) activation} for every hook
    the nodes need (hook_z: (T, H, d_head); the rest (T, d_model)), and its logits (T, d_vocab)."""
    device = next(bridge.parameters()).device
    wanted = sorted({site_of(config, n).hook for n in nodes})  # x{L}.mid too: read unpatched, its hook is right
    acts: dict = {}

    def grabber(name: str):
        def grab(x, hook):
            acts[name] = x[0].clone()  # keyed by our name: an alias's hook.name may differ
            return x
        return grab

    tokens = torch.tensor([list(ids)], device=device)  # (1, T)
    with hooked_pass(bridge), torch.inference_mode():
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[(h, grabber(h)) for h in wanted])  # (1, T, V)
    return acts, logits[0]


def patch_hooks(config, corrupt: dict, rows: list[tuple[Node, ...]], n_tokens: int,
                device) -> list[tuple[str, object]]:
    """The forward hooks that patch row r of a batch of clean rows (n_tokens long) with the nodes
    rows[r]. A node at or after n_tokens is left out: the rows stop at the answer position, and
    in a causal model a later position cannot change it."""
    writes: dict[str, list[tuple[int, int, int | None]]] = {}  # hook -> (row, position, head)
    mids: dict[int, list[tuple[int, int]]] = {}  # layer -> (row, position) of x{layer}.mid patches
    for r, nodes in enumerate(rows):
        for node in nodes:
            if node.position >= n_tokens:
                continue
            site = site_of(config, node)
            if site.kind == "resid_mid":
                mids.setdefault(site.layer, []).append((r, node.position))
            else:
                writes.setdefault(site.hook, []).append((r, node.position, site.head))

    seen: dict = {}  # resid_pre hook -> its value in this pass (after its own patches)
    keep = {make_site("resid_pre", layer).hook: layer for layer in mids}
    mid_at = {make_site("attn_out", layer).hook: layer for layer in mids}

    def as_index(values) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    def hook_for(name: str):
        entries = writes.get(name, [])
        if entries:
            r, p = as_index([e[0] for e in entries]), as_index([e[1] for e in entries])
            head = as_index([e[2] for e in entries]) if entries[0][2] is not None else None
            src = corrupt[name]  # (T, d) or (T, H, d_head)
            values = src[p] if head is None else src[p, head]  # (n, d) or (n, d_head)
        if name in mid_at:
            layer = mid_at[name]
            mr = as_index([e[0] for e in mids[layer]])
            mp = as_index([e[1] for e in mids[layer]])
            mid_values = corrupt[make_site("resid_mid", layer).hook][mp]  # (m, d)
            pre_name = make_site("resid_pre", layer).hook

        def patch(x, hook):
            x = x.clone()  # (B, T, d) or (B, T, H, d_head) for hook_z
            if entries:
                if head is None:
                    x[r, p] = values
                else:
                    x[r, p, head] = values
            if name in keep:
                seen[name] = x
            if name in mid_at:
                # resid_mid = resid_pre + attn_out in this row, so this attn_out makes it the corrupt mid
                x[mr, mp] = mid_values - seen[pre_name][mr, mp]
            return x
        return patch

    names = sorted(set(writes) | set(keep) | set(mid_at))
    return [(name, hook_for(name)) for name in names]


def patched_logits(bridge, config, ids, corrupt: dict, rows: list[tuple[Node, ...]], position: int) -> torch.Tensor:
    """(len(rows), d_vocab): the logits at `position` of the clean input with each row's nodes
    patched. The rows stop at `position` (the tokens after it cannot change its logits)."""
    device = next(bridge.parameters()).device
    tokens = torch.tensor([list(ids)[:position + 1]], device=device).repeat(len(rows), 1)  # (B, T)
    hooks = patch_hooks(config, corrupt, rows, tokens.shape[1], device)
    with hooked_pass(bridge), torch.inference_mode():
        logits = bridge.run_with_hooks(tokens, fwd_hooks=hooks)  # (B, T, V)
    return logits[:, position]
