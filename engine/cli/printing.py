"""Text from disk or from a user, printed safely: shown, never obeyed by the terminal."""
from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every character a terminal would act on (an escape sequence, a newline, a lone
    surrogate that cannot even be encoded) written as its Python escape: a model's or a file's
    name is shown, never obeyed, and an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
