"""What the assistant heard of a spoken turn, against what was said: the word error rate.

Both texts are normalised first, the same way: Unicode NFKC, lowercase (Python's `str.lower`,
not Turkish-aware: "I" becomes "i", not "ı"), every character that is not a letter, a digit or an
apostrophe becomes a space, apostrophes at the edges of a word go, and the words are what the
whitespace splits. So "Where is my order?" and "where is my order" are the same words, while
"don't" and "do not" are not. The rate is jiwer's: (substitutions + deletions + insertions) /
the words said; it can exceed 1 when the assistant heard more words than were said. Nothing heard
(an empty transcript) is every word deleted: 1.0.
"""

from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(c if c.isalnum() or c == "'" or c.isspace() else " " for c in folded)
    return " ".join(word.strip("'") for word in kept.split() if word.strip("'"))


def word_error_rate(said: str, heard: str) -> float | None:
    """The word error rate of `heard` against `said`, normalised; None when `said` has no words."""
    reference, hypothesis = normalise(said), normalise(heard)
    if not reference:
        return None
    if not hypothesis:
        return 1.0
    import jiwer  # only runs that compare words need it

    return float(jiwer.wer(reference, hypothesis))
