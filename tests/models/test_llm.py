"""The llm kind in process (llama.cpp, ``qwen-0.5b``) on real BBC News rows.

The GGUF is loaded once per module and shared by every classifier under test (one thread:
llama.cpp's workers busy-wait and the machine has two cores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from docsort.data.dataset import Dataset
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.models.base import create, load
from docsort.models.llm import LLMClassifier
from docsort.models.llm.llamacpp_backend import LlamaCppBackend

DESCRIPTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "descriptions" / "bbc.yaml"


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    backend = LlamaCppBackend("qwen-0.5b", n_ctx=2048, n_threads=1)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def bbc() -> tuple[Dataset, Dataset]:
    """60 training rows (the k-shot pool) and 10 test rows, 2 per class, of BBC News."""

    def per_label(data: Dataset, n: int) -> Dataset:
        seen: dict[str, int] = {}
        keep = []
        for i, label in enumerate(data.labels or []):
            if seen.get(label, 0) < n:
                seen[label] = seen.get(label, 0) + 1
                keep.append(i)
        return data.subset(keep)

    train = per_label(load_dataset("builtin:bbc:train", "text", "label"), 12)
    test = per_label(load_dataset("builtin:bbc:test", "text", "label"), 2)
    return train, test


def llm(backend: LlamaCppBackend, **params: Any) -> LLMClassifier:
    """An unfitted llm classifier that uses the module's loaded model."""
    settings = {"descriptions": str(DESCRIPTIONS), "max_chars": 600, "n_threads": 1, **params}
    model = create("llm", settings)
    model.__dict__["backend_"] = backend
    return model


@pytest.fixture(scope="module")
def zero_shot(backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]) -> LLMClassifier:
    return llm(backend).fit(bbc[0])


def test_zero_shot_labels_every_row_with_a_probability_distribution(
    zero_shot: LLMClassifier, bbc: tuple[Dataset, Dataset]
) -> None:
    test = bbc[1]
    proba = zero_shot.predict_proba(test.texts)
    assert proba.shape == (len(test), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    labels = [zero_shot.labels_.names[i] for i in proba.argmax(axis=1)]
    accuracy = np.mean([a == b for a, b in zip(labels, test.labels, strict=True)])
    assert accuracy >= 0.3, labels  # chance is 0.2; a 40-row validation slice gave 0.425
    rows = zero_shot.last_usage_
    assert [r["status"] for r in rows] == ["scored"] * len(test)
    assert zero_shot.usage_["unparsed_rate"] == 0.0 and zero_shot.usage_["failed"] == 0
    assert all(r["prompt_tokens"] > 100 and r["completion_tokens"] >= 1 for r in rows)


def test_the_shared_prompt_prefix_is_evaluated_once(
    zero_shot: LLMClassifier, bbc: tuple[Dataset, Dataset]
) -> None:
    zero_shot.predict_proba(bbc[1].texts[:3])
    reused = [r["cached_tokens"] for r in zero_shot.last_usage_]
    # instructions and the label list (with descriptions) come before the document
    assert reused[1] == reused[2] > 100
    assert all(
        r < r_total
        for r, r_total in zip(
            reused, [u["prompt_tokens"] for u in zero_shot.last_usage_], strict=True
        )
    )


def test_save_and_load_give_the_same_probabilities(
    zero_shot: LLMClassifier,
    backend: LlamaCppBackend,
    bbc: tuple[Dataset, Dataset],
    tmp_path: Path,
) -> None:
    texts = bbc[1].texts[:2]
    before = zero_shot.predict_proba(texts)
    zero_shot.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert isinstance(loaded, LLMClassifier)
    assert loaded.descriptions_["tech"].startswith("News about technology")
    loaded.__dict__["backend_"] = backend  # the same weights, loaded once
    np.testing.assert_allclose(loaded.predict_proba(texts), before, atol=1e-6)


def test_label_names_are_scored_length_normalised(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    model = llm(backend, answer="name").fit(bbc[0])
    proba = model.predict_proba(bbc[1].texts[:2])
    assert proba.shape == (2, 5) and set(model.predict(bbc[1].texts[:2])) <= set(bbc[0].labels)
    lengths = backend._choice_tokens
    assert len(lengths["entertainment"]) >= 1 and all(
        r["status"] == "scored" for r in model.last_usage_
    )
    assert sum(r["completion_tokens"] for r in model.last_usage_) > 2  # multi-token names


def test_bias_calibration_on_validation_rows(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    train, valid = bbc[0].subset(range(0, 60, 2)), bbc[0].subset(range(1, 60, 2))
    model = llm(backend, calibration_rows=12).fit(train, valid)
    assert model.bias_ is not None and model.bias_.shape == (5,)
    assert abs(model.bias_.mean()) < 1e-9 and np.abs(model.bias_).max() > 0
    plain = llm(backend).fit(train)
    texts = bbc[1].texts[:2]
    assert not np.allclose(model.predict_proba(texts), plain.predict_proba(texts))


def test_few_shot_examples_are_retrieved_by_similarity(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    train, test = bbc
    model = llm(backend, shots=3, shot_selection="similar", shot_chars=200).fit(train)
    assert model.pool_vectors_ is not None and len(model.pool_) == len(train)
    sport = [t for t, label in zip(test.texts, test.labels, strict=True) if label == "sports"]
    shots = model._shots_for(sport)
    assert all(sum(s.label == "sports" for s in row) >= 2 for row in shots)
    assert model.predict(sport[:1])[0] in train.label_set.names
    assert model.last_usage_[0]["prompt_tokens"] > zero_prompt_tokens(backend, train, sport[0])


def zero_prompt_tokens(backend: LlamaCppBackend, train: Dataset, text: str) -> int:
    model = llm(backend).fit(train)
    model.predict([text])
    return model.last_usage_[0]["prompt_tokens"]


def test_json_answers_are_grammar_constrained(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    model = llm(backend, scoring="json").fit(bbc[0])
    labels = model.predict(bbc[1].texts[:2])
    assert set(labels) <= set(bbc[0].label_set.names)
    assert [r["status"] for r in model.last_usage_] == ["parsed", "parsed"]
    assert all(r["answer"].lstrip().startswith("{") for r in model.last_usage_)


def test_free_generation_is_parsed_and_unparsed_rows_counted(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    model = llm(backend, scoring="generate", max_tokens=6).fit(bbc[0])
    labels = model.predict(bbc[1].texts[:3])
    assert set(labels) <= set(bbc[0].label_set.names)  # a fallback label when unparsed
    statuses = [r["status"] for r in model.last_usage_]
    assert set(statuses) <= {"parsed", "unparsed"}
    assert model.usage_["unparsed_rate"] == statuses.count("unparsed") / 3
    assert all(r["completion_tokens"] >= 1 for r in model.last_usage_)


def test_rationale_comes_before_the_scored_answer(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    model = llm(backend, rationale=True, rationale_tokens=24).fit(bbc[0])
    model.predict(bbc[1].texts[:1])
    row = model.last_usage_[0]
    assert row["status"] == "scored" and len(row["rationale"]) > 10
    assert row["completion_tokens"] > 2  # the rationale's tokens are counted too


def test_bad_parameters_are_user_errors(bbc: tuple[Dataset, Dataset]) -> None:
    with pytest.raises(DocsortError, match="backend must be one of"):
        create("llm", {"backend": "gpt"}).fit(bbc[0])
    with pytest.raises(DocsortError, match="needs base_url"):
        create("llm", {"backend": "openai"}).fit(bbc[0])
    with pytest.raises(DocsortError, match="unknown label 'weather'"):
        create("llm", {"descriptions": {"weather": "rain"}}).fit(bbc[0])
    with pytest.raises(DocsortError, match="not a GGUF file"):
        LlamaCppBackend("/nonexistent/model.gguf")
