"""Probed models: the small transformers we study, built as TransformerLens native bridges."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from engine.tasks import get_task
from engine.tasks.base import Task


@dataclass(frozen=True)
class ProbedConfig:
    """The architecture of a probed model (docs/design.md §3 for the paper's sizes)."""

    task: str
    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    n_ctx: int
    d_vocab: int
    act_fn: str = "gelu"

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProbedConfig":
        names = {f.name for f in fields(cls)}
        missing = names - set(d) - {"act_fn"}
        if missing:
            raise KeyError(f"probed config lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in d.items() if k in names})

    def describe(self) -> str:
        return f"{self.n_layers} layers, {self.n_heads} head{'s' * (self.n_heads > 1)}, d_model {self.d_model}"


PAPER_CONFIGS = {
    "counting": ProbedConfig("counting", n_layers=2, n_heads=1, d_model=64, d_mlp=256, n_ctx=33, d_vocab=40),
    "addition": ProbedConfig("addition", n_layers=2, n_heads=4, d_model=32, d_mlp=128, n_ctx=14, d_vocab=15),
}


@dataclass
class ProbedModel:
    """A probed model ready to run: the TransformerLens bridge, its config and its task."""

    bridge: object  # TransformerBridge (typed loosely so this module imports without torch)
    config: ProbedConfig
    task: Task

    @property
    def device(self):
        return next(self.bridge.parameters()).device

    @property
    def module(self):
        """The bare torch module under the bridge: same parameters, no hook overhead (training)."""
        return self.bridge.original_model


def build_probed(config: ProbedConfig, seed: int = 0, device=None) -> ProbedModel:
    """A freshly initialised probed model."""
    from engine.runtime import TransformerBridge, TransformerBridgeConfig, pick_device

    bridge_cfg = TransformerBridgeConfig(
        d_model=config.d_model, d_head=config.d_head, n_heads=config.n_heads, n_layers=config.n_layers,
        n_ctx=config.n_ctx, d_vocab=config.d_vocab, d_mlp=config.d_mlp, act_fn=config.act_fn,
        normalization_type="LN", seed=seed,
    )
    bridge = TransformerBridge.boot_native(bridge_cfg, device=pick_device(device))
    bridge.eval()
    return ProbedModel(bridge=bridge, config=config, task=get_task(config.task))
