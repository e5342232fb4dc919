"""The transformers backend: the same ``qwen-0.5b`` weights as llama.cpp, read by transformers
from the GGUF (its tokenizer converted once into the model cache)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from docsort.data.loaders import load_dataset
from docsort.models.base import create
from docsort.models.kinds.llm.backend import common_prefix
from docsort.models.kinds.llm.hf_backend import TransformersBackend
from docsort.models.kinds.llm.llamacpp_backend import LlamaCppBackend
from docsort.models.kinds.llm.prompt import PromptBuilder

# transformers dequantises the GGUF into fp32 torch weights (minutes on this CPU; the first test
# took 139 s under load): run with -m slow
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf() -> Iterator[TransformersBackend]:
    backend = TransformersBackend("qwen-0.5b", n_threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    test = load_dataset("builtin:bbc:test", "text", "label")
    return [test.texts[i] for i in (0, 1)]


def test_scores_match_llama_cpp_on_the_same_weights(
    hf: TransformersBackend, texts: list[str]
) -> None:
    names = ("business", "entertainment", "politics", "sports", "tech")
    prompts = PromptBuilder(names, {}, answer="name", max_chars=400)
    conversations = [prompts.conversation(t) for t in texts]
    ours = hf.score(conversations, prompts.choices, lambda n: None)
    llama = LlamaCppBackend("qwen-0.5b", n_ctx=1024, n_threads=1)
    try:
        theirs = llama.score(conversations, prompts.choices, lambda n: None)
        same_prompt = llama.tokens(llama.render(conversations[0]))
    finally:
        llama.close()
    # the two stacks render the chat template and tokenise alike
    assert hf.tokens(hf.render(conversations[0])) == same_prompt
    for a, b in zip(ours, theirs, strict=True):
        assert a.extra["choice_lengths"] == b.extra["choice_lengths"]
        assert np.corrcoef(a.scores, b.scores)[0, 1] > 0.95
        assert np.argmax(a.scores) == np.argmax(b.scores)
    # the second prompt read its shared prefix (instructions, label list) from the cropped cache
    second = hf.tokens(hf.render(conversations[1]))
    shared = common_prefix(hf.tokens(hf.render(conversations[0])), second)
    assert shared > 20 and ours[1].cached_tokens == shared


def test_the_kind_runs_on_the_transformers_backend(hf: TransformersBackend) -> None:
    train = load_dataset("builtin:bbc:train", "text", "label").subset(range(20))
    model = create("llm", {"backend": "transformers", "max_chars": 300}).fit(train)
    model.__dict__["backend_"] = hf
    texts = load_dataset("builtin:bbc:test", "text", "label").texts[:2]
    labels = model.predict(texts)
    assert set(labels) <= set(train.label_set.names)
    assert [r["status"] for r in model.last_usage_] == ["scored", "scored"]
    generated = create("llm", {"backend": "transformers", "scoring": "generate"}).fit(train)
    generated.__dict__["backend_"] = hf
    generated.predict(texts[:1])
    assert generated.last_usage_[0]["completion_tokens"] >= 1
