"""The one site catalogue: the paper's short names, TransformerLens hook names, layers, kinds,
the alias rule, and reading sites through the bridge (docs/design.md §3, "Site names").

x{L}.pre/mid/post = blocks.L.hook_resid_pre/mid/post; a{L}.{H} = head H's output (hook_z of
head H times W_O[H]); m{L} = blocks.L.hook_mlp_out; attn{L} = blocks.L.hook_attn_out.
The identity of a site everywhere (CSV, settings, decoder files) is its hook name, with the
head index appended for heads: `blocks.0.attn.hook_z[2]`.

The alias rule: x{L+1}.pre is the same vector as x{L}.post. The flow graph names it x{L}.post
(x0.pre stays the embeddings); the diagram draws it twice, and an edge into block L+1 starts at
x{L+1}.pre, the node the block reads. Every module that needs the rule asks this one.

Parallel attention (GPT-NeoX / Pythia, GPT-J, Phi, CodeGen, Cohere, most Falcons): attention and
the MLP both read x{L}.pre and x{L}.post = x{L}.pre + attn{L} + m{L}, so there is no x{L}.mid
(the bridge has no `hook_resid_mid`). A model's config says so in `parallel_attn_mlp` (the same
name on our ProbedConfig and on TransformerLens's bridge config: `is_parallel` reads either).

Nothing here imports torch except `read_sites`, which does so when called.

Hooks attach to a bridge's shared modules, so a hooked pass sees every forward pass that runs
on that bridge meanwhile: `hooked_pass(bridge)` lets one thread at a time run one (the app
computes flow graphs on their own thread while a query's re-runs read sites on the engine
thread). Every hooked pass in the engine takes it: `read_sites` and the flow graph's capture.
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import SiteError

if TYPE_CHECKING:
    from engine.probed.config import ProbedConfig

KINDS = ("resid_pre", "head", "attn_out", "resid_mid", "mlp_out", "resid_post")
_HOOKS = {"resid_pre": "hook_resid_pre", "head": "attn.hook_z", "attn_out": "hook_attn_out",
          "resid_mid": "hook_resid_mid", "mlp_out": "hook_mlp_out", "resid_post": "hook_resid_post"}
_SHORT = re.compile(r"x(\d+)\.(pre|mid|post)|a(\d+)\.(\d+)|attn(\d+)|m(\d+)")


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


def short_name(kind: str, layer: int, head: int | None = None) -> str:
    """The paper's short name of a site: x1.post, a0.2, attn1, m0."""
    if kind == "head":
        return f"a{layer}.{head}"
    if kind == "attn_out":
        return f"attn{layer}"
    if kind == "mlp_out":
        return f"m{layer}"
    return f"x{layer}.{kind.removeprefix('resid_')}"


def make_site(kind: str, layer: int, head: int | None = None) -> Site:
    return Site(short_name(kind, layer, head), f"blocks.{layer}.{_HOOKS[kind]}", layer, kind, head)


def parse_short(short: str) -> tuple[str, int, int | None] | None:
    """(kind, layer, head) of a short name, or None when it is not one."""
    m = _SHORT.fullmatch(short)
    if not m:
        return None
    if m.group(1) is not None:
        return "resid_" + m.group(2), int(m.group(1)), None
    if m.group(3) is not None:
        return "head", int(m.group(3)), int(m.group(4))
    if m.group(5) is not None:
        return "attn_out", int(m.group(5)), None
    return "mlp_out", int(m.group(6)), None


def layer_of(short: str) -> int:
    """The block a short name belongs to (0 for names that are not sites)."""
    parsed = parse_short(short)
    return parsed[1] if parsed else 0


def is_parallel(config) -> bool:
    """Whether attention and MLP both read x{L}.pre (no x{L}.mid): our ProbedConfig, or a
    TransformerLens config (a bridge's `cfg`), both say it in `parallel_attn_mlp`."""
    return bool(getattr(config, "parallel_attn_mlp", False))


def all_sites(config: ProbedConfig) -> list[Site]:
    """Every site of a model (its ProbedConfig, or anything with n_layers and n_heads), in
    forward order; a parallel-attention model has no x{L}.mid. Each site's activation is a
    d_model-wide vector per position (a head's: its z through its rows of W_O)."""
    after = ("attn_out", "mlp_out", "resid_post") if is_parallel(config) else \
        ("attn_out", "resid_mid", "mlp_out", "resid_post")
    sites = []
    for L in range(config.n_layers):
        sites.append(make_site("resid_pre", L))
        sites += [make_site("head", L, H) for H in range(config.n_heads)]
        sites += [make_site(kind, L) for kind in after]
    return sites


def flow_sites(n_layers: int, n_heads: int, parallel: bool = False) -> list[Site]:
    """The flow graph's nodes in forward order: x0.pre, then per layer heads, x.mid, m, x.post
    (x{L}.pre for L >= 1 is x{L-1}.post by the alias rule, and attn{L} is the heads' sum);
    a parallel-attention model has no x.mid."""
    after = ("mlp_out", "resid_post") if parallel else ("resid_mid", "mlp_out", "resid_post")
    sites = [make_site("resid_pre", 0)]
    for L in range(n_layers):
        sites += [make_site("head", L, H) for H in range(n_heads)]
        sites += [make_site(kind, L) for kind in after]
    return sites


def canonical_site(short: str) -> str:
    """The flow graph's name of a site: x{L}.pre for L >= 1 is the same vector as x{L-1}.post."""
    parsed = parse_short(short)
    if parsed and parsed[0] == "resid_pre" and parsed[1] > 0:
        return short_name("resid_post", parsed[1] - 1)
    return short


def aliases(short: str, n_layers: int) -> list[str]:
    """Every name of the same vector: x{L}.post is also x{L+1}.pre below the last layer."""
    short = canonical_site(short)
    parsed = parse_short(short)
    if parsed and parsed[0] == "resid_post" and parsed[1] + 1 < n_layers:
        return [short, short_name("resid_pre", parsed[1] + 1)]
    return [short]


def resid_before(layer: int) -> str:
    """The flow graph's name of the residual stream that block `layer` reads."""
    return short_name("resid_pre", 0) if layer == 0 else short_name("resid_post", layer - 1)


def name_as_read_by(short: str, reader: str) -> str:
    """The name under which `reader` sees the vector `short`: x{L}.post feeding block L+1 is
    drawn as x{L+1}.pre."""
    parsed = parse_short(short)
    if parsed and parsed[0] == "resid_post" and layer_of(reader) == parsed[1] + 1:
        return short_name("resid_pre", parsed[1] + 1)
    return short


def previous_resid(short: str, parallel: bool = False) -> str | None:
    """The residual node before a residual node at the same position, by its graph name:
    x{L}.mid follows x{L}.pre (= x{L-1}.post, or x0.pre), x{L}.post follows x{L}.mid; in a
    parallel-attention model (no x{L}.mid) x{L}.post follows x{L}.pre."""
    parsed = parse_short(short)
    if not parsed or parsed[0] not in ("resid_mid", "resid_post"):
        return None
    kind, layer, _ = parsed
    if kind == "resid_post" and not parallel:
        return short_name("resid_mid", layer)
    return resid_before(layer)


def paper_sites(config, task=None) -> list[Site]:
    """The sites a decoder is trained on by default: the paper's choice for this model's task
    (every site if the task names none). task: the loaded model's own (a text model's may follow
    a prompt distribution with sites of its own); by default the one its config names."""
    from engine.tasks import get_task

    names = (task or get_task(config.task)).decoder_site_names(config)
    return [get_site(config, n) for n in names] if names else all_sites(config)


def chosen_sites(config, names: list[str] | None, task=None) -> list[Site]:
    """The sites named (short names, hook names or ids; in forward order, each once), or the
    default ones (`paper_sites`) when None; SiteError for a name the model does not have."""
    if not names:
        return paper_sites(config, task)
    wanted = {get_site(config, n).id for n in names}
    return [s for s in all_sites(config) if s.id in wanted]


def get_site(config: ProbedConfig, name: str) -> Site:
    """A site by short name ("x1.post", "a0.1"), hook name or id; SiteError when the model
    has no such site."""
    for site in all_sites(config):
        if name in (site.short, site.id) or (site.head is None and name == site.hook):
            return site
    mid = re.fullmatch(r"x(\d+)\.mid|blocks\.(\d+)\.hook_resid_mid", name)
    if mid and is_parallel(config) and int(mid.group(1) or mid.group(2)) < config.n_layers:
        layer = int(mid.group(1) or mid.group(2))
        raise SiteError(f"x{layer}.mid does not exist in a parallel-attention model (GPT-NeoX, GPT-J): "
                        f"attention and MLP both read x{layer}.pre")
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
    with hooked_pass(bridge), torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=[(h, grabber(ss)) for h, ss in wanted.items()], stop_at_layer=stop)
    return out


def read_rows(bridge, tokens, sites: list[Site], site_ids, positions):
    """(B, d_model): for each row b of `tokens` (B, T), the activation at sites[site_ids[b]] and
    position positions[b]. One partial forward pass that keeps only those vectors: a decoder's
    training batch never holds every site's activations at once (at GPT-2 small, 157 sites x
    256 inputs x 128 tokens would be about 20 GB)."""
    import torch

    B = tokens.shape[0]
    out = None
    wanted: dict[str, list[tuple[Site, torch.Tensor]]] = {}  # hook -> (site, its rows)
    for index in torch.unique(site_ids).tolist():
        site = sites[index]
        wanted.setdefault(site.hook, []).append((site, (site_ids == index).nonzero()[:, 0]))

    def grabber(entries):
        def grab(tensor, hook):
            nonlocal out
            for site, rows in entries:
                picked = tensor[rows, positions[rows]]  # (b, d) or (b, H, dh) for hook_z
                if site.kind == "head":
                    picked = picked[:, site.head] @ bridge.blocks[site.layer].attn.W_O[site.head]  # (b, d_model)
                if out is None:
                    out = picked.new_empty(B, picked.shape[-1])
                out[rows] = picked
            return tensor
        return grab

    stop = max(sites[i].stop_layer for i in torch.unique(site_ids).tolist())
    with hooked_pass(bridge), torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=[(h, grabber(e)) for h, e in wanted.items()], stop_at_layer=stop)
    return out


_PASS_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # bridge -> its lock
_PASS_LOCKS_GUARD = threading.Lock()


def hooked_pass(bridge) -> threading.Lock:
    """The lock that one hooked forward pass on `bridge` holds (see the module docstring)."""
    with _PASS_LOCKS_GUARD:
        lock = _PASS_LOCKS.get(bridge)
        if lock is None:
            lock = _PASS_LOCKS[bridge] = threading.Lock()
        return lock


def read_site(bridge, tokens, site: Site):
    """(B, T, d_model) activations of one site."""
    return read_sites(bridge, tokens, [site])[site.short]
