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

from docsort import registry
from docsort.models.kinds.llm.prompt import Conversation

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


class LocalBackend(Backend):
    """An in-process model whose logits can be read: each choice is scored exactly, token by
    token, after the prompt. Subclasses say how to render, tokenise, evaluate and decode."""

    _choice_tokens: dict[str, list[int]]

    def render(self, conversation: Conversation) -> str:
        raise NotImplementedError

    def tokens(self, text: str) -> list[int]:
        raise NotImplementedError

    def _evaluate(self, ids: list[int]) -> tuple[np.ndarray, Any, int]:
        """Next-token logits after ``ids``, a state to continue from, and prompt tokens reused."""
        raise NotImplementedError

    def _continue(self, ids: list[int], state: Any, tokens: list[int]) -> np.ndarray:
        """Logits ``[len(tokens), vocab]`` after each of ``tokens`` read on from ``ids``."""
        raise NotImplementedError

    def _decode(self, tokens: list[int]) -> str:
        raise NotImplementedError

    def _too_long(self, ids: list[int]) -> str | None:
        """Why the prompt cannot be read (a context window too small), or None."""
        return None

    def _choice(self, prompt: str, prompt_ids: list[int], choice: str) -> list[int]:
        """The tokens of ``choice`` as they follow the prompt (tokenised in context)."""
        if choice not in self._choice_tokens:
            joined = self.tokens(prompt + choice)
            if joined[: len(prompt_ids)] == prompt_ids and len(joined) > len(prompt_ids):
                ids = joined[len(prompt_ids) :]
            else:
                ids = self.tokens(choice)
            self._choice_tokens[choice] = ids
        return self._choice_tokens[choice]

    def score(
        self, conversations: Sequence[Conversation], choices: Sequence[str], advance: Advance
    ) -> list[Reply]:
        replies = []
        for conversation in conversations:
            prompt = self.render(conversation)
            ids = self.tokens(prompt)
            error = self._too_long(ids)
            if error:
                replies.append(Reply(error=error, prompt_tokens=len(ids)))
                advance(1)
                continue
            logits, state, reused = self._evaluate(ids)
            first = log_softmax(logits)
            choice_ids = [self._choice(prompt, ids, c) for c in choices]
            scores = np.empty(len(choices))
            extra_tokens = 0
            for k, tokens in enumerate(choice_ids):
                total = float(first[tokens[0]])
                if len(tokens) > 1:
                    steps = self._continue(ids, state, tokens[:-1])
                    for j in range(len(tokens) - 1):
                        total += float(log_softmax(steps[j])[tokens[j + 1]])
                    extra_tokens += len(tokens) - 1
                scores[k] = total
            replies.append(
                Reply(
                    scores=scores,
                    text=self._decode([int(np.argmax(first))]),
                    prompt_tokens=len(ids),
                    completion_tokens=1 + extra_tokens,
                    cached_tokens=reused,
                    extra={"choice_lengths": [len(t) for t in choice_ids]},
                )
            )
            advance(1)
        return replies


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


BackendFactory = Callable[[Any], Backend]
# backend name (the ``llm`` kind's ``backend`` parameter, saved with the model) -> a function
# building the backend from the model's parameters; see register_backend
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator: the ``llm`` kind's ``backend: NAME`` builds its backend with the decorated
    function, which takes the model (its parameters: ``base``, ``n_threads``, ...) and returns a
    ``Backend``. The extension point for another runtime (vLLM in process, a hosted API with
    its own client); a name is registered once, and saved models record it."""

    def wrap(factory: BackendFactory) -> BackendFactory:
        registry.add(BACKENDS, name, factory, "llm backend")
        return factory

    return wrap
