"""Activation sites: the paper's short names, TransformerLens hook names, and reading them.

x{L}.pre/mid/post = blocks.L.hook_resid_pre/mid/post; a{L}.{H} = head H's output (hook_z of
head H times W_O[H]); m{L} = blocks.L.hook_mlp_out; attn{L} = blocks.L.hook_attn_out.
The identity of a site everywhere (CSV, settings, decoder files) is its hook name, with the
head index appended for heads: `blocks.0.attn.hook_z[2]`.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import SiteError
from engine.probed.model import ProbedConfig

KINDS = ("resid_pre", "head", "attn_out", "resid_mid", "mlp_out", "resid_post")


@dataclass(frozen=True)
class Site:
    short: str  # the paper's name: x0.pre, a1.0, m0, attn1 ...
    hook: str  # the TransformerLens hook read
    layer: int
    kind: str  # one of KINDS
    head: int | None = None

    @property
    def id(self) -> str:
        return f"{self.hook}[{self.head}]" if self.head is not None else self.hook

    @property
    def stop_layer(self) -> int:
        """Blocks that must run to read this site (the model runs no further)."""
        return self.layer + 1


def all_sites(config: ProbedConfig) -> list[Site]:
    """Every site of a model, in forward order."""
    sites = []
    for L in range(config.n_layers):
        sites.append(Site(f"x{L}.pre", f"blocks.{L}.hook_resid_pre", L, "resid_pre"))
        for H in range(config.n_heads):
            sites.append(Site(f"a{L}.{H}", f"blocks.{L}.attn.hook_z", L, "head", H))
        sites.append(Site(f"attn{L}", f"blocks.{L}.hook_attn_out", L, "attn_out"))
        sites.append(Site(f"x{L}.mid", f"blocks.{L}.hook_resid_mid", L, "resid_mid"))
        sites.append(Site(f"m{L}", f"blocks.{L}.hook_mlp_out", L, "mlp_out"))
        sites.append(Site(f"x{L}.post", f"blocks.{L}.hook_resid_post", L, "resid_post"))
    return sites


# The sites the paper trained its decoders on (docs/design.md §3).
PAPER_SITES = {
    "counting": ["x0.pre", "a0.0", "x0.mid", "m0", "x0.post", "a1.0", "x1.mid", "m1", "x1.post"],
    "addition": ["x0.pre", "a0.0", "a0.1", "a0.2", "a0.3", "x0.mid", "x0.post",
                 "a1.0", "a1.1", "a1.2", "a1.3", "x1.mid", "x1.post"],
}


def paper_sites(config: ProbedConfig) -> list[Site]:
    names = PAPER_SITES.get(config.task)
    if names is None:
        return all_sites(config)
    return [get_site(config, n) for n in names]


def get_site(config: ProbedConfig, name: str) -> Site:
    """A site by short name, hook name or id."""
    for site in all_sites(config):
        if name in (site.short, site.id) or (site.head is None and name == site.hook):
            return site
    shorts = " ".join(s.short for s in all_sites(config))
    raise SiteError(f"unknown site {name!r} for this {config.task} model; sites: {shorts}")


def read_sites(bridge, tokens, sites: list[Site]) -> dict:
    """Activations of several sites for a batch of token grids, one partial forward pass.

    tokens: (B, T) int tensor. Returns {site.short: (B, T, d_model) tensor}. The model runs
    only as far as the deepest site's layer.
    """
    import torch

    wanted: dict[str, list[Site]] = {}
    for site in sites:
        wanted.setdefault(site.hook, []).append(site)
    out: dict = {}

    def grabber(hook_sites: list[Site]):
        # hook.name may be the canonical name behind an alias, so each hook gets its own sites
        def grab(tensor, hook):
            for site in hook_sites:
                if site.kind == "head":
                    w_o = bridge.blocks[site.layer].attn.W_O[site.head]  # (d_head, d_model)
                    out[site.short] = tensor[:, :, site.head, :] @ w_o  # (B, T, d_model)
                else:
                    out[site.short] = tensor
            return tensor
        return grab

    stop = max(site.stop_layer for site in sites)
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=[(h, grabber(ss)) for h, ss in wanted.items()], stop_at_layer=stop)
    return out


def read_site(bridge, tokens, site: Site):
    """(B, T, d_model) activations of one site."""
    return read_sites(bridge, tokens, [site])[site.short]
