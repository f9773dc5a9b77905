"""Reading vectors in the vocabulary (docs/design.md §4): logit lens, direct logits, MLP neurons.

Every node's vector x goes through the final norm and the unembedding. Both readouts share one
matrix product: with c(x) the norm's centring and w its weight,

    M = (c(x) * w) @ W_U                      (N, V)
    logit lens   = softmax(M / s(x) + beta)   beta = b @ W_U + b_U (the norm's bias, unembedded)
    direct logit = M / s_final                s_final = the final norm's scale at x's position

The direct logit ("promoted" / "suppressed" tokens) freezes the final norm's scale of the
residual stream the component's output ends up in, x{last}.post at the same position (as
TransformerLens's `apply_ln_to_stack` does): that is the component's true additive share of
the model's logits, comparable across layers, and all shares plus the biases sum to the
logits. A raw `output @ W_U` would ignore the norm's centring and weight, which reorder tokens.

Large vocabularies (GPT-2's 50,257) make the (N, V) product the cost of the whole flow graph,
so on hardware with fast bfloat16 the sweep over the vocabulary runs in bfloat16 and every
value that is reported (top tokens, target, promoted, suppressed) is recomputed exactly in
float32 from a few candidates per row. Only the softmax normaliser's tail and the target's rank
rest on the sweep. bfloat16 rounds each product's result to 8 bits, an error proportional to
the logit's size, so the sweep multiplies by W_U minus its mean column: that shifts every
logit of a row by the same amount (softmax does not change) and leaves the rounding
proportional to the logit's distance from the row's mean, not to its size (GPT-2's logits sit
far from 0). Probabilities then come out within about 1% (relative) of float32.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from engine.flow.graph import NeuronReadout
from engine.runtime import torch

FAST_VOCAB = 4096  # vocabularies at least this big use the bfloat16 sweep (when the hardware has it)
CHUNK_ROWS = 256  # rows per vocabulary sweep: (256, 50257) float32 = 51 MB
EXTRA_CANDIDATES = 6  # bfloat16 near-misses rescored exactly so the float32 top-k is right


@dataclass(frozen=True)
class FinalNorm:
    """The model's final normalisation (LayerNorm, RMSNorm, their parameter-free forms, or none)."""

    center: bool
    normalise: bool
    weight: torch.Tensor | None  # (d_model,)
    bias: torch.Tensor | None  # (d_model,)
    eps: float

    @classmethod
    def of(cls, bridge) -> FinalNorm:
        cfg = bridge.cfg
        kind = (cfg.normalization_type or "").upper()
        if kind and getattr(cfg, "final_rms", False):  # same rule as the native model's final norm
            kind = "RMSPRE" if kind in ("RMSPRE", "LNPRE") else "RMS"
        ln = bridge.ln_final
        weight = getattr(ln, "weight", None) if kind in ("LN", "RMS") else None
        bias = getattr(ln, "bias", None) if kind == "LN" else None
        return cls(center=kind in ("LN", "LNPRE"), normalise=bool(kind), weight=_detach(weight),
                   bias=_detach(bias), eps=float(cfg.eps))

    def centred_weighted(self, x: torch.Tensor) -> torch.Tensor:
        """c(x) * w: the linear part of the norm, before dividing by the scale."""
        if self.center:
            x = x - x.mean(-1, keepdim=True)
        return x * self.weight if self.weight is not None else x

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """(...,) the norm's divisor s(x); 1 when the model has no final norm."""
        if not self.normalise:
            return torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)
        if self.center:
            x = x - x.mean(-1, keepdim=True)
        return (x.pow(2).mean(-1) + self.eps).sqrt()


def _detach(t):
    return None if t is None else t.detach().float()


@dataclass(frozen=True)
class Unembed:
    """What the vocabulary readouts need from a model, prepared once per flow graph."""

    norm: FinalNorm
    w_u: torch.Tensor  # (d_model, V) float32
    w_u_t: torch.Tensor  # (V, d_model) float32, contiguous: rows gathered by token id
    beta: torch.Tensor  # (V,) logit-lens offset: b @ W_U + b_U
    w_u_fast: torch.Tensor | None  # (d_model, V) bfloat16 W_U - w_u_mean, when the fast sweep is used
    w_u_mean: torch.Tensor  # (d_model,) mean column of W_U

    @classmethod
    def of(cls, bridge, fast: bool | None = None) -> Unembed:
        """Prepared once per model and weights (W_U transposed and in bfloat16 is 230 MB for GPT-2)."""
        params = [bridge.W_U, getattr(bridge, "b_U", None), getattr(bridge.ln_final, "weight", None),
                  getattr(bridge.ln_final, "bias", None)]
        key = (fast, *((p.data_ptr(), p._version) for p in params if p is not None))
        cached = _CACHE.get(bridge)
        if cached is not None and cached[0] == key:
            return cached[1]
        made = cls._make(bridge, fast)
        _CACHE[bridge] = (key, made)
        return made

    @classmethod
    def _make(cls, bridge, fast: bool | None) -> Unembed:
        norm = FinalNorm.of(bridge)
        w_u = bridge.W_U.detach().float()
        b_u = getattr(bridge, "b_U", None)
        beta = torch.zeros(w_u.shape[1], device=w_u.device) if b_u is None else b_u.detach().float().clone()
        if norm.bias is not None:
            beta = beta + norm.bias @ w_u
        if fast is None:
            fast = w_u.shape[1] >= FAST_VOCAB and _fast_bf16(w_u.device)
        mean = w_u.mean(1)
        fast_w = (w_u - mean[:, None]).to(torch.bfloat16) if fast else None
        return cls(norm, w_u, w_u.T.contiguous(), beta, fast_w, mean)

    @property
    def d_vocab(self) -> int:
        return self.w_u.shape[1]


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # bridge -> (weights key, Unembed)


def _fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    cpu = getattr(torch, "cpu", None)
    check = getattr(cpu, "_is_avx512_bf16_supported", None) or getattr(cpu, "_is_amx_tile_supported", None)
    try:
        return bool(check and check())
    except Exception:  # an unknown torch build: stay exact
        return False


@dataclass
class VocabReadout:
    """Readouts of N vectors, as numpy arrays; row r is the r-th vector given."""

    top_ids: np.ndarray  # (N, k) logit-lens tokens, most probable first
    top_probs: np.ndarray  # (N, k)
    target_prob: np.ndarray  # (N,)
    target_rank: np.ndarray  # (N,) 1 = the lens's top token; 0 where not computed
    promoted_ids: np.ndarray  # (N_dla, k) largest direct logit first
    promoted_logits: np.ndarray  # (N_dla, k)
    suppressed_ids: np.ndarray  # (N_dla, k) most negative direct logit first
    suppressed_logits: np.ndarray  # (N_dla, k)


def read_vocab(unembed: Unembed, x: torch.Tensor, final_scale: torch.Tensor, targets: torch.Tensor,
               n_dla: int, k: int, check=lambda: None) -> VocabReadout:
    """Logit lens of every row of x (N, d), direct logits of its first n_dla rows, target rank of the rest.

    final_scale (N,): s_final of each row's position; targets (N,): each row's target token.
    check() is called before each chunk of rows (it raises to stop).
    """
    n, v = x.shape[0], unembed.d_vocab
    k = min(k, v)
    y = unembed.norm.centred_weighted(x.float())  # (N, d)
    s = unembed.norm.scale(x.float())  # (N,)
    rows = min(CHUNK_ROWS, max(n, 1))
    # (C, V) buffers reused by every chunk: fresh 50 MB tensors cost page faults each time
    bufs = {"m": torch.empty(rows, v, device=x.device), "cmp": torch.empty(rows, v, device=x.device)}
    if unembed.w_u_fast is not None:
        bufs["m16"] = torch.empty(rows, v, device=x.device, dtype=torch.bfloat16)
    out = {name: [] for name in ("ti", "tp", "gp", "gr", "pi", "pl", "si", "sl")}
    for a in range(0, n, rows):
        check()
        b = min(a + rows, n)
        dla = max(min(b, n_dla) - a, 0)  # rows of this chunk that are components (they come first)
        _read_chunk(unembed, y[a:b], s[a:b], final_scale[a:b], targets[a:b], dla, k, out, bufs)
    cat = {key: torch.cat(val).cpu().numpy() if val else np.zeros((0, k)) for key, val in out.items()}
    return VocabReadout(cat["ti"].astype(np.int64), cat["tp"], cat["gp"], cat["gr"].astype(np.int64),
                        cat["pi"].astype(np.int64), cat["pl"], cat["si"].astype(np.int64), cat["sl"])


def _read_chunk(u: Unembed, y, s, s_final, target, dla: int, k: int, out: dict, bufs: dict) -> None:
    c = y.shape[0]
    fast = u.w_u_fast is not None
    m = bufs["m"][:c]  # (C, V) M = (c(x) * w) @ W_U, less `shift` * s per row when fast
    if fast:
        m.copy_(torch.matmul(y.to(torch.bfloat16), u.w_u_fast, out=bufs["m16"][:c]))
        shift = (y @ u.w_u_mean) / s  # (C,) what the mean column takes off each row's lens logits
    else:
        torch.matmul(y, u.w_u, out=m)
        shift = torch.zeros_like(s)
    kc = min(k + (EXTRA_CANDIDATES if fast else 0), m.shape[1])
    if dla:  # direct logits: candidates from the sweep, values exact
        p_ids = _top_ids(m[:dla], kc, largest=True)
        s_ids = _top_ids(m[:dla], kc, largest=False)
        p_ids, p_val = _best(p_ids, _exact(u, y[:dla], p_ids) / s_final[:dla, None], k, largest=True)
        s_ids, s_val = _best(s_ids, _exact(u, y[:dla], s_ids) / s_final[:dla, None], k, largest=False)
        out["pi"].append(p_ids), out["pl"].append(p_val), out["si"].append(s_ids), out["sl"].append(s_val)

    lens = m.div_(s[:, None]).add_(u.beta)  # (C, V) logit-lens logits, in place
    t_ids = _top_ids(lens, kc, largest=True)
    t_val = _exact(u, y, t_ids) / s[:, None] + u.beta[t_ids]  # (C, kc) exact
    g_val = (_exact(u, y, target[:, None]) / s[:, None] + u.beta[target[:, None]])[:, 0]  # (C,) exact
    rank = torch.zeros_like(target)
    if dla < c:  # residual rows: the target's rank over the whole vocabulary
        # float 0/1 out: summing a bool tensor is 4x slower
        above = torch.gt(lens[dla:], (g_val - shift)[dla:, None], out=bufs["cmp"][dla:c])
        above.scatter_(1, target[dla:, None], 0.0)  # never the target itself (its swept value is approximate)
        rank[dla:] = above.sum(-1).long() + 1
    top = t_val.max(-1, keepdim=True).values  # (C, 1)
    approx = lens.gather(1, t_ids) + shift[:, None]
    tail = lens.sub_(top - shift[:, None]).exp_().sum(-1)  # sum of exp(lens - top) over the vocabulary
    if fast:  # swap the candidates' approximate terms for their exact ones
        exact = (t_val - top).exp().sum(-1)
        tail = torch.maximum(tail - (approx - top).exp().sum(-1) + exact, exact)
    lse = top[:, 0] + tail.log()
    t_ids, t_val = _best(t_ids, t_val, k, largest=True)
    out["ti"].append(t_ids), out["tp"].append((t_val - lse[:, None]).exp())
    out["gp"].append((g_val - lse).exp()), out["gr"].append(rank)


BLOCK = 64  # vocabulary block for the two-stage top-k


def _top_ids(m: torch.Tensor, k: int, largest: bool) -> torch.Tensor:
    """(C, k) ids of the k largest (smallest) entries per row, in no particular order.

    For a big vocabulary: the top k lie in the k blocks with the largest block maxima (any
    other block has k blocks above it, each holding an entry above all of its own), so one
    max-per-block pass and a top-k over k blocks replace a full top-k.
    """
    c, v = m.shape
    nb = v // BLOCK
    if nb < 4 * k:
        return m.topk(k, dim=-1, largest=largest).indices
    blocks = m[:, :nb * BLOCK].view(c, nb, BLOCK)
    best = (blocks.amax(-1) if largest else blocks.amin(-1)).topk(k, dim=-1, largest=largest).indices  # (C, k)
    cand = (best[..., None] * BLOCK + torch.arange(BLOCK, device=m.device)).reshape(c, -1)
    tail = torch.arange(nb * BLOCK, v, device=m.device).expand(c, -1)  # the columns no block holds
    cand = torch.cat([cand, tail], 1)
    pick = m.gather(1, cand).topk(k, dim=-1, largest=largest).indices
    return cand.gather(1, pick)


def _exact(u: Unembed, y: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(C, j) float32 values of (y @ W_U) at the given token ids only."""
    return torch.einsum("cd,cjd->cj", y, u.w_u_t[ids])  # w_u_t[ids]: (C, j, d)


def _best(ids: torch.Tensor, vals: torch.Tensor, k: int, largest: bool):
    order = vals.argsort(dim=-1, descending=largest)[:, :k]
    return ids.gather(1, order), vals.gather(1, order)


# ---- MLP neurons (VISIT's drill-down) ----------------------------------------------------------
def top_neuron_readouts(unembed: Unembed, acts: torch.Tensor, w_out: torch.Tensor, final_scale: float,
                        n_neurons: int = 10, n_tokens: int = 5) -> list[NeuronReadout]:
    """The neurons writing most at one position: acts (d_mlp,), w_out (d_mlp, d_model)."""
    out_norm = w_out.norm(dim=-1)  # (d_mlp,)
    score = (acts * out_norm).abs()
    n_neurons = min(n_neurons, score.numel())
    best = score.topk(n_neurons).indices  # (n,)
    writes = acts[best, None] * w_out[best]  # (n, d_model): each neuron's actual output
    logits = unembed.norm.centred_weighted(writes) @ unembed.w_u / final_scale  # (n, V)
    k = min(n_tokens, logits.shape[1])
    p_val, p_ids = logits.topk(k, dim=-1)
    s_val, s_ids = logits.topk(k, dim=-1, largest=False)
    rows = []
    for r, n in enumerate(best.tolist()):
        rows.append(NeuronReadout(
            index=n, activation=float(acts[n]), out_norm=float(out_norm[n]), score=float(score[n]),
            promoted=list(zip(p_ids[r].tolist(), p_val[r].tolist())),
            suppressed=list(zip(s_ids[r].tolist(), s_val[r].tolist()))))
    return rows
