"""What every LLM backend offers the ``llm`` kind: score choices, or generate text.

``score`` returns, per conversation, the log-likelihood of each choice string as the
assistant's answer: exact for in-process backends (llama.cpp, transformers), from the first
answer token's top log-probabilities for HTTP endpoints. ``generate`` returns the assistant's
text (greedy), optionally constrained to JSON naming one label where the backend can enforce it.
Both report token usage per row and never raise for one bad row: a row that failed carries
``error`` and the rest of the batch goes on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from docsort.models.llm.prompt import Conversation

Advance = Callable[[int], None]


@dataclass
class Reply:
    """One row's answer and what it cost."""

    scores: np.ndarray | None = None  # log-likelihood per choice; None: not scored
    text: str | None = None  # generated text (generate) or the top answer token (score)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from an earlier request (prefix cache)
    attempts: int = 0  # HTTP requests made for the row (retries included)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def add_usage(self, other: Reply) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.attempts += other.attempts


class Backend:
    """Base class; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    exact_scores: ClassVar[bool] = True  # can score any choice string, not only a first token

    def score(
        self, conversations: Sequence[Conversation], choices: Sequence[str], advance: Advance
    ) -> list[Reply]:
        raise NotImplementedError

    def generate(
        self,
        conversations: Sequence[Conversation],
        max_tokens: int,
        advance: Advance,
        schema: dict | None = None,
    ) -> list[Reply]:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model or connections; the backend is rebuilt on next use."""


def default_threads() -> int:
    """All cores but one (at least one): llama.cpp and torch threads busy-wait, so taking every
    core while anything else runs (a test, a service, a cascade's first stage) made a document
    take ~42 s instead of 0.5 s on this 2-core machine."""
    return max(1, (os.cpu_count() or 2) - 1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    top = logits.max()
    return logits - top - math.log(float(np.exp(logits - top).sum()))


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
