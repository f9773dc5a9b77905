"""The flags that name the model a command runs on, shared by query, sweep and patch."""
from __future__ import annotations

from engine.cli import values
from engine.store.folders import DEFAULT_MODEL
from engine.tasks import PROMPTS, TASKS


def add_model_flags(p) -> None:
    """--model (a name, folder or cache id), --task (a Hugging Face task checkpoint's task) and
    --prompts (a text model's prompt distribution)."""
    p.add_argument("--model", type=values.model_name, default=DEFAULT_MODEL,
                   help=f"model name or folder (default: {DEFAULT_MODEL})")
    p.add_argument("--task", choices=list(TASKS),
                   help="which task a Hugging Face checkpoint is, when its special ids do not say")
    p.add_argument("--prompts", choices=PROMPTS, help="a text model's inputs are this prompt distribution (ioi)")
