"""The conditional decoder: generates whole task inputs (BOS..EOS) from an activation and its site.

Design (docs/design.md §2): a GPT-2-style pre-LN decoder over the probed model's vocabulary, learned
positions, tied embeddings. The condition concat(z, E_site[site]) passes through residual MLP
blocks and a LayerNorm; each layer l then gets a_l = LN(Linear_l(.)) as one extra key/value slot
in front of its self-attention, so every token can attend to it. The decoder is not told the
query position.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class DecoderConfig:
    d_act: int  # width of the activations it inverts (the probed model's d_model)
    n_sites: int  # sites it was trained on (their ids are stored beside the weights)
    d_vocab: int
    n_ctx: int
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_cond_blocks: int = 6

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DecoderConfig:
        """From a decoder record; KeyError for a missing size, ValueError for a bad one."""
        from engine.validate import parameter_budget, whole

        if not isinstance(d, dict):
            raise ValueError("expected a JSON object")
        limits = {"d_act": 65536, "n_sites": 100_000, "d_vocab": 1_000_000, "n_ctx": 1_000_000, "d_model": 65536,
                  "n_layers": 256, "n_heads": 256, "n_cond_blocks": 256}
        defaults = {f.name: f.default for f in fields(cls)}
        values = {}
        for name, high in limits.items():
            if name not in d and defaults[name] is MISSING:
                raise KeyError(f"decoder config lacks {name}")
            values[name] = whole(d.get(name, defaults[name]), name, 1, high)
        cfg = cls(**values)
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} is not a multiple of n_heads {cfg.n_heads}")
        width = cfg.d_model
        parameter_budget(2 * cfg.d_vocab * width + cfg.n_ctx * width + cfg.n_layers * 12 * width * width
                         + cfg.n_sites * cfg.d_act + cfg.n_cond_blocks * 2 * cfg.d_act * cfg.d_act, "the decoder")
        return cfg

    def describe(self) -> str:
        return f"d_model {self.d_model}, {self.n_layers} layers, {self.n_heads} heads"


class CondResBlock(nn.Module):
    """x += W2 relu(W1 LN(x)); hidden width = input width."""

    def __init__(self, width: int):
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.w1 = nn.Linear(width, width)
        self.w2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.w2(F.relu(self.w1(self.ln(x))))


class PrefixAttention(nn.Module):
    """Causal self-attention with one extra key/value slot (the condition) at the front."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.d_head = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.kv_prefix = nn.Linear(cfg.d_model, 2 * cfg.d_model)  # the condition's key and value
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, dh)

    def prefix_kv(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv_prefix(a).unsqueeze(1).chunk(2, dim=-1)  # each (B, 1, d)
        return self.split(k), self.split(v)  # each (B, H, 1, dh)

    def forward(self, x: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, causal: bool):
        """x: (B, T, d) new tokens; past_k/v: (B, H, S, dh) prefix (+ cached tokens).

        Returns (out (B, T, d), keys, values) with the new tokens appended to the cache.
        """
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = self.split(q), self.split(k), self.split(v)
        keys = torch.cat([past_k, k], dim=2)
        values = torch.cat([past_v, v], dim=2)
        T, S = q.shape[2], past_k.shape[2]
        mask = None
        if causal and T > 1:
            # token i sees every past slot and new tokens 0..i
            mask = torch.ones(T, S + T, dtype=torch.bool, device=x.device).tril(diagonal=S)
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # (B, H, T, dh)
        y = y.transpose(1, 2).reshape(x.shape)
        return self.out(y), keys, values

    def step(self, x: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor, filled: int) -> torch.Tensor:
        """One new token per row during sampling. x: (B, 1, d); cache_k/v: (B, H, S_max, dh)
        preallocated, slots 0..filled-1 in use; this token's key and value go into slot `filled`
        (writing into a preallocated cache avoids copying the whole cache every step)."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        cache_k[:, :, filled] = self.split(k)[:, :, 0]
        cache_v[:, :, filled] = self.split(v)[:, :, 0]
        keys, values = cache_k[:, :, :filled + 1], cache_v[:, :, :filled + 1]  # (B, H, S, dh)
        y = F.scaled_dot_product_attention(self.split(q), keys, values)  # (B, H, 1, dh)
        return self.out(y.transpose(1, 2).reshape(x.shape))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = PrefixAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(),
                                 nn.Linear(4 * cfg.d_model, cfg.d_model))

    def step(self, x, cache_k, cache_v, filled: int):
        """Sampling: one new token per row (see PrefixAttention.step)."""
        x = x + self.attn.step(self.ln1(x), cache_k, cache_v, filled)
        return x + self.mlp(self.ln2(x))

    def forward(self, x, past_k, past_v, causal=True):
        h, keys, values = self.attn(self.ln1(x), past_k, past_v, causal)
        x = x + h
        return x + self.mlp(self.ln2(x)), keys, values


class ConditionalDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        width = cfg.d_act + cfg.n_sites
        self.site_emb = nn.Embedding(cfg.n_sites, cfg.n_sites)
        self.cond_blocks = nn.Sequential(*[CondResBlock(width) for _ in range(cfg.n_cond_blocks)])
        self.cond_ln = nn.LayerNorm(width)
        self.cond_proj = nn.ModuleList([nn.Linear(width, cfg.d_model) for _ in range(cfg.n_layers)])
        self.cond_proj_ln = nn.ModuleList([nn.LayerNorm(cfg.d_model) for _ in range(cfg.n_layers)])
        self.tok_emb = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.blocks = nn.ModuleList([DecoderBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def prefixes(self, z: torch.Tensor, site_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the condition's key and value: z (B, d_act), site_ids (B,) -> [(B, H, 1, dh)] * 2."""
        c = torch.cat([z, self.site_emb(site_ids)], dim=-1)  # (B, d_act + n_sites)
        c = self.cond_ln(self.cond_blocks(c))
        return [blk.attn.prefix_kv(ln(proj(c)))
                for blk, proj, ln in zip(self.blocks, self.cond_proj, self.cond_proj_ln)]

    def embed(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Input vectors (B, T, d) of tokens (B, T) placed at positions start..start+T-1."""
        return self.tok_emb(tokens) + self.pos_emb.weight[start:start + tokens.shape[1]]

    def logits_of(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_f(x) @ self.tok_emb.weight.T  # tied embeddings, (B, T, V)

    def hidden(self, tokens: torch.Tensor, z: torch.Tensor, site_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced final states (B, T, d), after ln_f: logits are these times the embedding."""
        x = self.embed(tokens, 0)
        for blk, (pk, pv) in zip(self.blocks, self.prefixes(z, site_ids)):
            x, _, _ = blk(x, pk, pv, causal=True)
        return self.ln_f(x)

    def forward(self, tokens: torch.Tensor, z: torch.Tensor, site_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for tokens (B, T) given the condition."""
        return self.hidden(tokens, z, site_ids) @ self.tok_emb.weight.T

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def flops_per_token(cfg: DecoderConfig) -> float:
    """Multiply-adds x 2 per generated token with a KV cache (ignoring the short attention)."""
    per_layer = 3 * cfg.d_model ** 2 + cfg.d_model ** 2 + 8 * cfg.d_model ** 2
    return 2.0 * (cfg.n_layers * per_layer + cfg.d_model * cfg.d_vocab)

