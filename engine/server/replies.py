"""What the engine answers besides the engine's own result types: a loaded model's description."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoadedModel:
    name: str
    key: str  # the model key the window sent (str of its ModelEntry.path)
    task: str
    trained_sites: list[str] = field(default_factory=list)  # short names the decoder was trained on
    seconds: float = 0.0
    no_query: str = ""  # why the model cannot be queried at all; empty when it can (the search needs no decoder)
    has_decoder: bool = True  # False: only the local search answers (QueryOptions.sampler "auto" or "search")
    device: str = "cpu"  # where the engine runs it: "cpu" or "cuda:0"
