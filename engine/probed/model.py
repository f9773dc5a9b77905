"""Probed models: the small transformers we study, built as TransformerLens native bridges."""
from __future__ import annotations

from dataclasses import dataclass

from engine.probed.config import ProbedConfig
from engine.tasks import TASKS, get_task
from engine.tasks.base import Task

# The paper's sizes, by task name (each task carries its own: engine/tasks/).
PAPER_CONFIGS = {name: task.probed_config for name, task in TASKS.items()}


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
