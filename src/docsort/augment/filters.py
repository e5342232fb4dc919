"""What an augmented row must not be: empty, a copy of its source, or a duplicate.

``copied_share`` is the share of a candidate's word trigrams that occur in its source: a
verbatim copy (or the source's first sentences, as a small LLM asked to paraphrase often
writes) scores ~1.0, while a summary that reuses the technical terms scored 0.5-0.8 on arXiv
abstracts. ``normalised`` is the key duplicates are found by (case, punctuation and spacing
ignored), against every training text and every row written before.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
MIN_WORDS = 3  # shorter answers are refusals or fragments, not restatements


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def normalised(text: str) -> str:
    return " ".join(words(text))


def trigrams(tokens: list[str]) -> set[tuple[str, ...]]:
    if len(tokens) < 3:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)}


def copied_share(candidate: str, source: str) -> float:
    """The share of ``candidate``'s word trigrams found in ``source`` (0 to 1)."""
    mine = trigrams(words(candidate))
    if not mine:
        return 1.0
    return len(mine & trigrams(words(source))) / len(mine)


def why_dropped(candidate: str, source: str, seen: set[str], max_copied: float) -> str | None:
    """Which rule drops ``candidate`` (``empty``, ``copy``, ``duplicate``), or None; a kept
    candidate's key is added to ``seen``."""
    if len(words(candidate)) < MIN_WORDS:
        return "empty"
    if copied_share(candidate, source) >= max_copied:
        return "copy"
    key = normalised(candidate)
    if key in seen:
        return "duplicate"
    seen.add(key)
    return None
