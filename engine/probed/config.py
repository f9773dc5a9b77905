"""The architecture of a probed model, as plain data (no torch): what a model folder records."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


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
    def from_dict(cls, d: dict) -> ProbedConfig:
        names = {f.name for f in fields(cls)}
        missing = names - set(d) - {"act_fn"}
        if missing:
            raise KeyError(f"probed config lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in d.items() if k in names})

    def describe(self) -> str:
        return f"{self.n_layers} layers, {self.n_heads} head{'s' * (self.n_heads > 1)}, d_model {self.d_model}"
