"""The checks a value read from a file must pass before the engine builds anything from it.

Model records, decoder records and Hugging Face configs come from disk, so a wrong type, a
NaN or a size of a billion must be a one-line error before any tensor is allocated (a record
asking for 10^9 layers would otherwise allocate layer by layer until memory runs out).
"""
from __future__ import annotations

import math

MAX_PARAMETERS = 20_000_000_000  # about 80 GB in float32: larger than any model these tools open


def whole(value, name: str, low: int, high: int) -> int:
    """`value` when it is a whole number (not a bool, not 2.0) from low to high, else ValueError."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, got {str(value)[:40]!r}")
    return value


def finite(value, name: str, low: float, high: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {str(value)[:40]!r}")
    return float(value)


def flag(value, name: str) -> bool:
    """`value` when it is true or false (JSON's, not 0 or "yes"), else ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {str(value)[:40]!r}")
    return value


def one_of(value, name: str, allowed: tuple) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {str(value)[:40]!r}")
    return value


def parameter_budget(count: int, what: str) -> None:
    """ValueError when a config asks for more parameters than MAX_PARAMETERS."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"{what} would have {count:,} parameters, above the studio's ceiling of "
                         f"{MAX_PARAMETERS:,} (about {MAX_PARAMETERS * 4 / 1e9:.0f} GB in float32)")
