"""Paraphrases written by a generative LLM: one greedy answer per (text, prompt).

Each prompt asks for a different kind of restatement, so ``n`` prompts give ``n`` different
rows per source text while every answer stays reproducible (greedy decoding, no sampling
seed to carry around). The text comes first and the instruction after it: on four arXiv
abstracts ``qwen-0.5b`` (Qwen2.5-Coder 0.5B) asked first and shown the text after, or given
an editor's system prompt, mostly copied the text verbatim; with the instruction last, three
of four summaries were real restatements. The copies that remain are what
``filters.copied_share`` drops.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from docsort.errors import DocsortError
from docsort.models.kinds.llm.backend import Backend

PROMPTS = (
    "Summarise the text above in two sentences of your own words. Answer with the summary only.",
    "Rewrite the text above in your own words, in at most three sentences, keeping its "
    "technical terms. Answer with the new text only.",
    "Explain the text above to a colleague in three sentences of your own words. Answer with "
    "the explanation only.",
)
# a reply often starts by naming what it is ("Summary:", "Here is the paraphrase:")
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|okay)[,!.]?\s*)?(?:here(?:'s| is)[^:\n]{0,60}:|"
    r"(?:summary|paraphrase|explanation|rewritten text|new text|text)\s*:)\s*",
    re.IGNORECASE,
)


class Paraphraser:
    """Restate texts with ``backend`` (an ``llm`` backend: llama.cpp or an OpenAI-compatible
    endpoint). ``max_chars`` cuts long sources before they are sent (the prompt must fit the
    context window and costs tokens); ``max_tokens`` bounds each answer."""

    def __init__(
        self,
        backend: Backend,
        prompts: Sequence[str] = PROMPTS,
        max_chars: int = 2000,
        max_tokens: int = 160,
    ) -> None:
        if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise DocsortError("paraphrase prompts: give at least one non-empty prompt")
        self.backend = backend
        self.prompts = tuple(p.strip() for p in prompts)
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "failed": 0}

    def write(
        self, texts: Sequence[str], n: int, advance: Callable[[int], None] = lambda k: None
    ) -> list[list[str]]:
        """``n`` restatements of each text (the first ``n`` prompts), cleaned; a failed or
        empty answer is an empty string, kept in place so the caller can count it."""
        if not 1 <= n <= len(self.prompts):
            raise DocsortError(
                f"paraphrase n={n}: give 1 to {len(self.prompts)} (one answer per prompt; "
                "add prompts to write more)"
            )
        conversations = [
            [{"role": "user", "content": f"{text[: self.max_chars]}\n\n{prompt}"}]
            for text in texts
            for prompt in self.prompts[:n]
        ]
        replies = self.backend.generate(conversations, self.max_tokens, advance)
        answers = []
        for reply in replies:
            self.usage["prompt_tokens"] += reply.prompt_tokens
            self.usage["completion_tokens"] += reply.completion_tokens
            self.usage["failed"] += reply.error is not None
            answers.append("" if reply.error else clean_answer(reply.text or ""))
        return [answers[i * n : (i + 1) * n] for i in range(len(texts))]


def clean_answer(text: str) -> str:
    """The restatement without a leading "Summary:" or quotes around it, on one line."""
    text = _PREAMBLE.sub("", text.strip(), count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return " ".join(text.split())
