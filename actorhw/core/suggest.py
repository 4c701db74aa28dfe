"""Did you mean: the closest known names to a word someone mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``) for the closest names, else ``""``.

    A name the word starts with (or that starts with the word) comes first: ``execute``
    suggests ``exec`` before ``expect``.
    """
    names = sorted(set(known))
    prefixed = [n for n in names if n and (word.startswith(n) or n.startswith(word))]
    close = difflib.get_close_matches(word, names, n=2, cutoff=0.6)
    ranked = list(dict.fromkeys([*prefixed[:1], *close]))[:2]
    if not ranked or not word:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in ranked) + "?"
