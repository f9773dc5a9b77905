"""One forward pass with only the hooks the flow graph needs, and the contributions it implies.

Contributions follow the LM Transparency Tool (docs/design.md §4): for parts p_i that sum to a whole
w, c_i = max(||w||_1 - ||w - p_i||_1, 0), normalised to sum 1 per whole.

Attention block L at query position i: whole = x{L}.mid[i]; parts = one term per (source j,
head h), pattern[h, i, j] * (v_j @ W_O[h]), and the incoming residual x{L}.pre[i] + b_O.
The output bias b_O joins the residual part: it is a constant that no head or source token
computes, and keeping it out of the heads makes a head's node exactly the InversionView site
a{L}.{h} (hook_z of head h times W_O[h]), so a node's readout is the vector its decoder sees.
v_j keeps b_V (it is part of what a source token offers: hook_v). So the parts sum to the
whole exactly (up to float rounding). MLP block L: parts m{L}[i] (with b_out) and x{L}.mid[i];
whole x{L}.post[i].

A parallel block (GPT-NeoX, GPT-J: attention and MLP both read x{L}.pre, no x{L}.mid) is one
step: whole = x{L}.post[i]; parts = the (source j, head h) terms, m{L}[i] and x{L}.pre[i] + b_O.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.probed.sites import hooked_pass, is_parallel
from engine.runtime import torch


@dataclass
class ForwardCapture:
    """The activations of one input (batch dimension dropped), float32 tensors."""

    logits: torch.Tensor  # (T, V) the model's own output
    resid_pre0: torch.Tensor  # (T, d) x0.pre: embeddings
    resid_mid: list  # per layer (T, d); [] in a parallel-attention model (it has no x{L}.mid)
    resid_post: list  # per layer (T, d)
    mlp_out: list  # per layer (T, d)
    pattern: list  # per layer (H, T, T): [h, query i, source j]
    v: list  # per layer (T, H_kv, d_head), b_V included
    neuron_acts: list  # per layer (T, d_mlp)
    parallel: bool = False  # attention and MLP both read x{L}.pre: no x{L}.mid (resid_mid is [])


def capture(bridge, tokens: torch.Tensor, check=lambda: None) -> ForwardCapture:
    """Run the model once on tokens (1, T), reading only the hooks below. check() is called after
    each block (it raises to stop the pass: a cancelled flow graph)."""
    n_layers = bridge.cfg.n_layers
    slots = (("hook_resid_post", "post"), ("hook_mlp_out", "mlp"), ("attn.hook_pattern", "pattern"),
             ("attn.hook_v", "v"), ("mlp.hook_post", "acts"))
    parallel = is_parallel(bridge.cfg)
    if not parallel:  # a parallel block has no hook_resid_mid
        slots = (("hook_resid_mid", "mid"), *slots)
    wanted = {"blocks.0.hook_resid_pre": ("pre0", 0)}
    for layer in range(n_layers):
        for hook, slot in slots:
            wanted[f"blocks.{layer}.{hook}"] = (slot, layer)
    got: dict = {}

    def grabber(key):  # keyed by our own name: hook.name may be the canonical name behind an alias
        def grab(tensor, hook):
            got[key] = tensor[0].detach().float()
            if key[0] == "post":
                check()  # a block is done: stop here if the graph is no longer wanted
            return tensor
        return grab

    with hooked_pass(bridge), torch.inference_mode():  # a query's re-runs may use the bridge on another thread
        logits = bridge.run_with_hooks(tokens, fwd_hooks=[(name, grabber(key)) for name, key in wanted.items()])
    per_layer = {slot: [got[(slot, layer)] for layer in range(n_layers) if (slot, layer) in got]
                 for slot in ("mid", "post", "mlp", "pattern", "v", "acts")}
    return ForwardCapture(logits=logits[0].detach().float(), resid_pre0=got[("pre0", 0)],
                          resid_mid=per_layer["mid"], resid_post=per_layer["post"], mlp_out=per_layer["mlp"],
                          pattern=per_layer["pattern"], v=per_layer["v"], neuron_acts=per_layer["acts"],
                          parallel=parallel)


def head_values(v: torch.Tensor, w_o: torch.Tensor) -> torch.Tensor:
    """(H, T_source, d) what each source token offers through each head: v_j @ W_O[h].

    v (T, H_kv, d_head) from hook_v (b_V included), w_o (H, d_head, d).
    """
    n_heads = w_o.shape[0]
    if v.shape[1] != n_heads:  # grouped-query attention: each key/value head serves several heads
        v = v.repeat_interleave(n_heads // v.shape[1], dim=1)
    return torch.einsum("jhe,hed->hjd", v, w_o)


def head_terms(pattern: torch.Tensor, v: torch.Tensor, w_o: torch.Tensor) -> torch.Tensor:
    """(H, T_query, T_source, d) the attention output split by head and source token.

    pattern (H, T, T). Summed over heads and sources, plus b_O, this is blocks.L.hook_attn_out.
    """
    return pattern[..., None] * head_values(v, w_o)[:, None, :, :]


def contributions(parts_dist: torch.Tensor, whole_norm: torch.Tensor, parts_norm: torch.Tensor) -> torch.Tensor:
    """Normalised c_i = max(||w|| - ||w - p_i||, 0) along the last axis.

    parts_dist (..., P): ||w - p_i||_1; whole_norm (...,): ||w||_1; parts_norm (..., P): ||p_i||_1,
    used only in the degenerate case where every c_i is 0 (then the weights follow the parts' sizes).
    """
    c = (whole_norm[..., None] - parts_dist).clamp(min=0)
    total = c.sum(-1, keepdim=True)
    fallback = parts_norm / parts_norm.sum(-1, keepdim=True).clamp(min=1e-30)
    return torch.where(total > 0, c / total.clamp(min=1e-30), fallback)


@dataclass
class LayerFlow:
    """One layer's decomposition and contribution weights. `whole` is the attention step's whole:
    x{L}.mid, or in a parallel block x{L}.post, of which the MLP is then one more part (its input
    is x{L}.pre, and no x{L}.mid -> x{L}.post weight exists)."""

    heads: torch.Tensor  # (H, T, d) each head's output a{L}.{h} (no b_O)
    attn_weight: torch.Tensor  # (H, T_query, T_source) weight of x{L}.pre[j] -> a{L}.{h}[i]
    attn_resid_weight: torch.Tensor  # (T,) weight of x{L}.pre[i] -> whole[i]
    mlp_weight: torch.Tensor  # (T,) weight of m{L}[i] -> x{L}.post[i] (and of the MLP's input -> m{L}[i])
    mlp_resid_weight: torch.Tensor | None  # (T,) weight of x{L}.mid[i] -> x{L}.post[i]; None if parallel
    parallel: bool = False


PAIR_BLOCK = 4096  # causal (query, source) pairs per block: H x 4,096 x d floats (150 MB at GPT-2 small)


def layer_flow(bridge, cap: ForwardCapture, layer: int) -> LayerFlow:
    x_pre = cap.resid_pre0 if layer == 0 else cap.resid_post[layer - 1]  # (T, d)
    x_post, mlp = cap.resid_post[layer], cap.mlp_out[layer]
    whole = x_post if cap.parallel else cap.resid_mid[layer]  # (T, d) the attention step's whole
    attn = bridge.blocks[layer].attn  # per block: the bridge's W_O stacks every layer on each call
    w_o = attn.W_O.detach().float()  # (H, d_head, d)
    b_o = attn.b_O.detach().float() if attn.b_O is not None else torch.zeros_like(whole[0])  # (d,); Llama has none
    pattern = cap.pattern[layer]  # (H, T_query, T_source)
    n_heads, t = pattern.shape[0], pattern.shape[1]
    vo = head_values(cap.v[layer], w_o)  # (H, T_source, d)

    # attention: parts = (h, j) terms pattern[h, i, j] * vo[h, j], then (parallel only) m, then the
    # residual x_pre + b_O; whole = x_mid, or x_post in a parallel block. ||w - p||_1 needs each
    # term, for the causal pairs j <= i only (others are 0)
    whole_norm = whole.abs().sum(-1)  # (T,)
    qi, sj = torch.tril_indices(t, t, device=whole.device)  # (P,) query i, source j
    term_dist = whole_norm[None, :, None].repeat(n_heads, 1, t)  # (H, T_i, T_j): ||w - 0|| off the causal pairs
    # the (H, pairs, d) differences in blocks of PAIR_BLOCK pairs: all P = T(T+1)/2 at once held
    # 1.5 GB at 289 tokens of GPT-2 small, and grows with the square of the prompt
    for a in range(0, len(qi), PAIR_BLOCK):
        i, j = qi[a:a + PAIR_BLOCK], sj[a:a + PAIR_BLOCK]
        diff = torch.addcmul(whole[i], pattern[:, i, j, None], vo[:, j], value=-1)  # (H, p, d): w - p
        term_dist[:, i, j] = torch.linalg.vector_norm(diff, ord=1, dim=-1)
    term_norm = pattern * vo.abs().sum(-1)[:, None, :]  # (H, T_i, T_j): ||a v||_1 = |a| ||v||_1, a >= 0
    others = torch.stack([mlp, x_pre + b_o] if cap.parallel else [x_pre + b_o], 1)  # (T, 2 or 1, d)
    dist = torch.cat([term_dist.permute(1, 0, 2).reshape(t, -1), (whole[:, None] - others).abs().sum(-1)], 1)
    norms = torch.cat([term_norm.permute(1, 0, 2).reshape(t, -1), others.abs().sum(-1)], 1)
    w = contributions(dist, whole_norm, norms)  # (T, H*T + 2 or 1)
    attn_weight = w[:, :n_heads * t].reshape(t, n_heads, t).permute(1, 0, 2)  # (H, T_i, T_j)
    heads = torch.bmm(pattern, vo)
    if cap.parallel:
        return LayerFlow(heads=heads, attn_weight=attn_weight, attn_resid_weight=w[:, -1], mlp_weight=w[:, -2],
                         mlp_resid_weight=None, parallel=True)

    # MLP: parts = m and x_mid; whole = x_post
    parts = torch.stack([mlp, whole], 1)  # (T, 2, d)
    w2 = contributions((x_post[:, None, :] - parts).abs().sum(-1), x_post.abs().sum(-1), parts.abs().sum(-1))
    return LayerFlow(heads=heads, attn_weight=attn_weight, attn_resid_weight=w[:, -1],
                     mlp_weight=w2[:, 0], mlp_resid_weight=w2[:, 1])
