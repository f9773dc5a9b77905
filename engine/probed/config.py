"""The architecture of a probed model, as plain data (no torch): what a model folder records."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

ACTIVATION_NAMES = ("gelu", "gelu_new", "relu")  # what the model and the fast site reader both run


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
    # attention and MLP both read x{L}.pre, no x{L}.mid (GPT-NeoX, GPT-J: engine/probed/sites.py);
    # TransformerLens's name for it. Records leave it out when False, so older ones read unchanged.
    parallel_attn_mlp: bool = False

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["parallel_attn_mlp"]:
            del d["parallel_attn_mlp"]  # every record before parallel models, and every sequential one
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ProbedConfig:
        """From a model record; KeyError for a missing field, ValueError for a bad one (checked
        before anything is built: engine/validate.py)."""
        from engine.tasks import TASKS, TEXT_TASK
        from engine.validate import flag, one_of, parameter_budget, whole

        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict):
            raise ValueError("expected a JSON object")
        missing = names - set(d) - {"act_fn", "parallel_attn_mlp"}
        if missing:
            raise KeyError(f"probed config lacks {', '.join(sorted(missing))}")
        task = one_of(d["task"], "task", (*TASKS, TEXT_TASK))
        # a text model's activation is the bridge's business (any Hugging Face name); ours must be one we run
        act = d.get("act_fn", "gelu")
        if task != TEXT_TASK or not isinstance(act, str):
            act = one_of(act, "act_fn", ACTIVATION_NAMES)
        cfg = cls(task=task,
                  n_layers=whole(d["n_layers"], "n_layers", 1, 256), n_heads=whole(d["n_heads"], "n_heads", 1, 256),
                  d_model=whole(d["d_model"], "d_model", 1, 65536), d_mlp=whole(d["d_mlp"], "d_mlp", 1, 262144),
                  n_ctx=whole(d["n_ctx"], "n_ctx", 1, 10_000_000),
                  d_vocab=whole(d["d_vocab"], "d_vocab", 1, 10_000_000),
                  act_fn=act, parallel_attn_mlp=flag(d.get("parallel_attn_mlp", False), "parallel_attn_mlp"))
        if cfg.parallel_attn_mlp and task != TEXT_TASK:  # the task models are built sequential (model.py)
            raise ValueError(f"parallel_attn_mlp is for text models; a {task} model is sequential")
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model {cfg.d_model} is not a multiple of n_heads {cfg.n_heads}")
        parameter_budget(cfg.parameters(), "the probed model")
        return cfg

    def parameters(self) -> int:
        """About how many parameters the architecture has (embeddings, blocks, unembedding)."""
        d = self.d_model
        block = 4 * d * d + 2 * d * self.d_mlp + 4 * d + self.d_mlp + 5 * d
        return 2 * self.d_vocab * d + self.n_ctx * d + self.n_layers * block

    def describe(self) -> str:
        return f"{self.n_layers} layers, {self.n_heads} head{'s' * (self.n_heads > 1)}, d_model {self.d_model}"
