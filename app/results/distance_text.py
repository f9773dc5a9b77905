"""How a distance reads in the results: three decimals, more where they would all be zero.

The cosine metric (1 - cos) puts the closest samples at 1e-5 and below: with three decimals every
top row read "0.000", and the ranking looked like a tie. Small values keep two significant digits
(0.0034, 3.4e-5) in at most six characters, the width the Distance column's text has.
"""
from __future__ import annotations

import math


def distance_text(d: float) -> str:
    if not math.isfinite(d):
        return str(d)
    if d == 0:
        return "0"
    if abs(d) >= 0.01:
        return f"{d:.3f}"
    if abs(d) >= 0.001:
        return f"{d:.4f}"
    mantissa, exponent = f"{d:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"
