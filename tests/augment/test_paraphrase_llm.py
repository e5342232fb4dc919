"""Paraphrases by the real local LLM (``qwen-0.5b`` through llama.cpp, one thread)."""

from __future__ import annotations

import pytest

from docsort.augment.paraphrase import PROMPTS, Paraphraser
from docsort.errors import DocsortError

pytest.importorskip("llama_cpp")


def test_qwen_restates_a_title_once_per_prompt() -> None:
    from docsort.models.kinds.llm.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend("qwen-0.5b", n_ctx=512, n_threads=1)
    try:
        writer = Paraphraser(backend, max_tokens=40)
        title = "Speaker diarization of overlapping speech as multi-label classification"
        (answers,) = writer.write([title], 2)
    finally:
        backend.close()
    assert len(answers) == 2
    assert all(a and a != title for a in answers)
    assert writer.usage["completion_tokens"] > 0 and writer.usage["failed"] == 0
    with pytest.raises(DocsortError, match=f"give 1 to {len(PROMPTS)}"):
        writer.write([title], len(PROMPTS) + 1)
