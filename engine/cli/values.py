"""Argparse types for the command line's numbers: each refuses what it cannot mean, in one line.

float() accepts "nan" and "inf", int() any number of digits (of any script), and neither knows a
range; these types take only finite ASCII numbers in a stated range and say what is allowed when
they refuse. The name and path types refuse an empty value, which argparse takes as it is."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

MAX_STEPS = 100_000_000  # about a year of the fastest run here; more is a typo
MAX_MINUTES = 60 * 24 * 30  # a month


def _number(text: str, kind: type) -> float | int | None:
    if len(text) > 32 or not text.isascii():  # int() and float() take any script's digits: '٣' is 3
        return None
    try:
        value = kind(text)
    except ValueError:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _show(bound) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"


def in_range(kind: type, low, high, what: str):
    """A type for a `kind` number from `low` to `high` inclusive."""

    def parse(text: str):
        value = _number(text, kind)
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {_show(low)} to {_show(high)}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def positive_minutes(text: str) -> float:
    """Minutes of training: a finite number above 0 and at most a month."""
    value = _number(text, float)
    if value is None or not 0 < value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"expected minutes above 0 and at most {MAX_MINUTES:,}, got {text!r}")
    return value


share = in_range(float, 0.0, 1.0, "a share")
temperature = in_range(float, 1.0, 100.0, "a temperature")
steps = in_range(int, 1, MAX_STEPS, "a number of steps")
seed = in_range(int, 0, 2**32 - 1, "a seed")
threads = in_range(int, 1, 1024, "a thread count")
batch_size = in_range(int, 1, 1_048_576, "a batch size")
learning_rate = in_range(float, 1e-9, 10.0, "a learning rate")
model_width = in_range(int, 8, 8192, "a width")
layer_count = in_range(int, 1, 128, "a layer count")
head_count = in_range(int, 1, 128, "a head count")
layer_index = in_range(int, 0, 127, "a layer index")
buckets = in_range(int, 1, 64, "a bucket count")
minutes_or_zero = in_range(float, 0.0, float(MAX_MINUTES), "minutes")
warmup = in_range(int, 0, MAX_STEPS, "a number of steps")
queries = in_range(int, 1, 100_000, "a number of queries")
candidates = in_range(int, 1, 65_536, "a number of candidates")  # the engine's own limit
rows = in_range(int, 1, 1_000_000, "a number of rows")
limit = in_range(int, 1, 1_000_000_000, "a number of inputs")
top_k = in_range(int, 1, 1000, "a number of tokens")
epsilon = in_range(float, 1e-6, 100.0, "an epsilon")
decoder_length = in_range(int, 3, 1_000_000, "a decoder length")
chains = in_range(int, 1, 4096, "a number of chains")  # the engine's own limit
search_temperature = in_range(float, 0.0, 100.0, "a temperature (in units of epsilon)")


def positions(text: str) -> tuple[int, ...]:
    """Comma-separated position indices, e.g. 1,3,5 (checked against the query once it is read)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or any(len(p) > 9 or not (p.isascii() and p.isdigit()) for p in parts):
        raise argparse.ArgumentTypeError(f"expected position indices separated by commas, e.g. 1,3,5, got {text!r}")
    return tuple(int(p) for p in parts)


def site_list(text: str) -> tuple[str, ...]:
    """Comma-separated site names (checked against the model once it is open)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected site names separated by commas, e.g. x0.pre,a1.0,m1, got {text!r}")
    return names


def device(text: str) -> str:
    """cpu, cuda, cuda:N or mps, and only one this machine has."""
    import torch

    name = text.strip().lower()
    if name == "cpu":
        return name
    if name == "mps":
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return name
        raise argparse.ArgumentTypeError("mps is not available on this machine; use cpu")
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not (index.isascii() and index.isdigit() and len(index) < 4)):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available here (torch {torch.__version__}); "
                                         "use cpu")
    if index and int(index) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return name


def _not_empty(text: str, what: str) -> str:
    if not text.strip():  # argparse would take it, and `args.x or default` would quietly mean the default
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return text


def model_name(text: str) -> str:
    """A model name, folder or Hugging Face cache id; an empty one is refused, not read as the default."""
    return _not_empty(text, "a model name or folder")


def path(text: str) -> Path:
    """A file or folder path; an empty one is refused (Path('') is the working folder), and so is
    one with a NUL, which no file system takes (the os calls raise ValueError, not OSError)."""
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}: a path cannot hold a NUL character")
    return Path(_not_empty(text, "a path"))


def node_list(text: str) -> str:
    """Nodes as SITE@POS,... (checked against the model once it is open); none at all is refused,
    not read as 'every node'."""
    if not any(part.strip() for part in text.split(",")):
        raise argparse.ArgumentTypeError(f"expected nodes as SITE@POS separated by commas, e.g. a0.0@13,a1.0@:, "
                                         f"got {text!r}")
    return text
