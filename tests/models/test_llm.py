"""The llm kind in process (llama.cpp, ``qwen-0.5b``) on real BBC News rows.

The GGUF is loaded once per module and shared by every classifier under test (one thread:
llama.cpp's workers busy-wait and the machine has two cores; two threads were 4x slower than one
while other jobs ran). A document takes ~1 s unloaded and up to ~10 s on the shared machine, so
the default run scores three documents; the rest is ``slow``. ``qwen-0.5b`` (a *coder* model)
uncalibrated answers the first-listed label ("business") for most BBC rows: accuracy is
asserted with per-label biases fitted on validation rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from docsort.data.dataset import Dataset
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.models.base import create, load
from docsort.models.kinds.llm import LLMClassifier
from docsort.models.kinds.llm.llamacpp_backend import LlamaCppBackend

pytest.importorskip("llama_cpp")

ACCURACY_MARGIN = 0.15
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


def test_zero_shot_labels_every_row_and_reuses_the_shared_prefix(
    zero_shot: LLMClassifier, bbc: tuple[Dataset, Dataset]
) -> None:
    texts = bbc[1].texts[:3]
    proba = zero_shot.predict_proba(texts)
    assert proba.shape == (3, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert set(zero_shot.predict(texts)) <= set(bbc[0].label_set.names)
    rows = zero_shot.last_usage_
    assert [r["status"] for r in rows] == ["scored"] * 3  # exact scores: nothing to parse
    assert zero_shot.usage_["unparsed_rate"] == 0.0 and zero_shot.usage_["failed"] == 0
    assert all(r["prompt_tokens"] > 100 and r["completion_tokens"] >= 1 for r in rows)
    # instructions and the label list (with descriptions) come before the document: evaluated
    # once, then taken from the KV cache for every later document
    reused = [r["cached_tokens"] for r in rows]
    assert reused[1] == reused[2] > 100
    assert all(r < row["prompt_tokens"] for r, row in zip(reused, rows, strict=True))


@pytest.mark.slow
def test_bias_calibration_lifts_accuracy_above_chance(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    train, test = bbc
    valid = train.subset(range(1, 60, 3))  # 20 rows, 4 per label, also in the shot-free train
    model = llm(backend).fit(train, valid)
    assert model.bias_ is not None
    labels = model.predict(test.texts)
    accuracy = np.mean([a == b for a, b in zip(labels, test.labels, strict=True)])
    assert accuracy > 0.2 + ACCURACY_MARGIN, labels  # chance is 0.2 (5 balanced labels)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_few_shot_examples_are_retrieved_by_similarity(bbc: tuple[Dataset, Dataset]) -> None:
    """No LLM call: the retrieved examples (``minilm`` neighbours) and the prompt they make."""
    train, test = bbc
    model = create("llm", {"shots": 3, "shot_selection": "similar", "shot_chars": 200})
    model.fit(train)
    assert model.pool_vectors_ is not None and len(model.pool_) == len(train)
    shots = model._shots_for(test.texts)
    same = [s.label == label for row, label in zip(shots, test.labels, strict=True) for s in row]
    assert np.mean(same) >= 0.6  # 24 of 30 measured; chance is 0.2
    # most similar example last, nearest the document
    vector = model._embed(test.texts[:1])[0]
    similarity = [float(model._embed([s.text])[0] @ vector) for s in shots[0]]
    assert similarity == sorted(similarity)
    prompts = model._prompts()
    user = prompts.conversation(test.texts[0], shots[0])[1]["content"]
    assert user.count("Answer: ") == 3 and user.index("Examples:") < user.index(
        " ".join(test.texts[0].split())[:30]
    )


@pytest.mark.slow
def test_json_answers_are_grammar_constrained(
    backend: LlamaCppBackend, bbc: tuple[Dataset, Dataset]
) -> None:
    model = llm(backend, scoring="json").fit(bbc[0])
    labels = model.predict(bbc[1].texts[:2])
    assert set(labels) <= set(bbc[0].label_set.names)
    assert [r["status"] for r in model.last_usage_] == ["parsed", "parsed"]
    assert all(r["answer"].lstrip().startswith("{") for r in model.last_usage_)


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_bias_fit_weights_labels_equally_and_leaves_unseen_labels_alone(
    bbc: tuple[Dataset, Dataset],
) -> None:
    """No LLM call: answer scores of a model that prefers the first label by 3 nats whatever the
    document; validation rows skewed to one label and missing another (as a small sample is)."""
    train = bbc[0]
    model = create("llm", {}).fit(train)
    names = model.labels_.names
    keep = [i for i, label in enumerate(train.labels) if label != "tech"]
    keep = [i for i in keep if train.labels[i] != "sports"] + [
        i for i in keep if train.labels[i] == "sports"
    ] * 3  # sports three times as often; no tech at all
    valid = train.subset(keep)
    y = valid.targets(model.labels_)

    def fake_scores(texts, description):
        order = np.random.default_rng(0).permutation(len(valid))[: len(texts)]
        truth = y[order]
        scores = np.full((len(texts), len(names)), -4.0)
        scores[np.arange(len(texts)), truth] = -2.0
        scores[:, 0] += 3.0  # the preferred answer
        fake_scores.truth = truth
        return scores, np.array(["scored"] * len(texts), dtype=object), []

    model._answer_scores = fake_scores
    model._fit_bias(valid)
    bias = model.bias_
    assert bias[names.index("tech")] == 0.0  # unseen: no correction
    corrected = (fake_scores(valid.texts, "")[0] + bias).argmax(axis=1)
    assert np.mean(corrected == fake_scores.truth) == 1.0
    assert bias[names.index("sports")] < bias[names.index("politics")] + 1.0  # not over-favoured


def test_threads_given_at_load_replace_the_saved_ones_for_the_run(
    zero_shot: LLMClassifier, tmp_path: Path
) -> None:
    from docsort.models.base import Runtime, read_manifest

    zero_shot.save(tmp_path / "m")
    assert read_manifest(tmp_path / "m")["params"]["n_threads"] == 1  # as trained
    loaded = load(tmp_path / "m", runtime=Runtime(threads=3))
    assert loaded.threads_for_run == 3  # this machine's, for this run
    assert load(tmp_path / "m").threads_for_run == 1
    loaded.save(tmp_path / "again")  # saved again (a cascade copying its stage): as trained
    assert read_manifest(tmp_path / "again")["params"]["n_threads"] == 1
