"""Long documents: windows cover the whole text, truncations keep the promised ends, and a model
that reads windows aggregates them into one answer per document."""

from __future__ import annotations

import numpy as np
import pytest

import docsort
from docsort import api
from docsort.data.loaders import load_dataset
from docsort.errors import DocsortError
from docsort.models.hub import resolve
from docsort.text.chunking import (
    LongDoc,
    aggregate,
    split_text,
    tokenizer_spans,
    training_pieces,
    word_spans,
)

TEXT = " ".join(f"w{i}" for i in range(100))  # 100 words


def words(piece: str) -> list[str]:
    return piece.split()


def test_windows_cover_every_token_with_the_asked_overlap() -> None:
    pieces = split_text(TEXT, LongDoc(size=30, overlap=10))
    assert all(p.tokens <= 30 for p in pieces)
    starts = [int(words(p.text)[0][1:]) for p in pieces]
    assert starts[:4] == [0, 20, 40, 60]
    assert words(pieces[-1].text)[-1] == "w99"  # the last window ends at the last token
    covered = {w for p in pieces for w in words(p.text)}
    assert covered == set(words(TEXT))
    for p in pieces:  # offsets point at the piece in the original text
        assert TEXT[p.start : p.end] == p.text


def test_short_texts_are_read_whole_and_truncations_keep_their_ends() -> None:
    short = split_text("a short text", LongDoc(size=30, overlap=5))
    assert [p.text for p in short] == ["a short text"]
    head = split_text(TEXT, LongDoc(strategy="head", size=30))
    tail = split_text(TEXT, LongDoc(strategy="tail", size=30))
    both = split_text(TEXT, LongDoc(strategy="head_tail", size=40))
    assert words(head[0].text) == [f"w{i}" for i in range(30)]
    assert words(tail[0].text) == [f"w{i}" for i in range(70, 100)]
    assert words(both[0].text)[:10] == [f"w{i}" for i in range(10)]
    assert words(both[0].text)[-30:] == [f"w{i}" for i in range(70, 100)]


def test_windows_follow_the_models_tokenizer() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    text = load_dataset("builtin:bbc:test", "text", "label").texts[0]
    n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n_tokens > 300
    pieces = split_text(text, LongDoc(size=128, overlap=32), tokenizer_spans(tokenizer))
    assert len(pieces) == int(np.ceil((n_tokens - 32) / 96))
    for p in pieces:  # a window re-tokenized fits the size (a cut word may add a piece)
        assert len(tokenizer(p.text, add_special_tokens=False)["input_ids"]) <= 128 + 2


def test_aggregations() -> None:
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    owner = np.array([0, 0, 0, 1])
    lengths = np.array([10.0, 100.0, 100.0, 5.0])

    def agg(how: str, multi: bool = False) -> np.ndarray:
        return aggregate(proba, owner, lengths, 2, how, multi)

    np.testing.assert_allclose(agg("mean")[0], [1.6 / 3, 1.4 / 3])
    np.testing.assert_allclose(agg("weighted")[0], [(9 + 40 + 30) / 210, (1 + 60 + 70) / 210])
    np.testing.assert_allclose(agg("max")[0], [0.9 / 1.6, 0.7 / 1.6])
    assert agg("vote")[0].argmax() == 1 and agg("vote")[0, 1] == pytest.approx(2 / 3, abs=0.01)
    np.testing.assert_allclose(agg("max", multi=True)[0], [0.9, 0.7])
    np.testing.assert_allclose(agg("mean")[1], proba[3])  # one window: itself
    for how in ("mean", "weighted", "max", "vote"):
        np.testing.assert_allclose(agg(how).sum(axis=1), 1.0)


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(DocsortError, match="overlap"):
        LongDoc(size=64, overlap=64)
    with pytest.raises(DocsortError, match="aggregate"):
        LongDoc(aggregate="median")
    with pytest.raises(DocsortError, match="unknown setting 'stride'"):
        LongDoc.from_dict({"stride": 3})


def test_a_model_trained_and_read_in_windows(tmp_path) -> None:
    data = load_dataset("builtin:bbc:train", "text", "label").subset(range(300))
    test = load_dataset("builtin:bbc:test", "text", "label").subset(range(60))
    config = {"strategy": "window", "size": 60, "overlap": 15, "aggregate": "mean"}
    pieces = training_pieces(data, LongDoc.from_dict(config), word_spans)
    assert len(pieces) > 3 * len(data)
    assert pieces.labels[0] == data.labels[0]  # windows inherit their document's label

    model = api.train(data, kind="tfidf", long_doc=config)
    proba = model.predict_proba(test.texts)
    assert proba.shape == (60, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = model.window_scores(test.texts[:2])
    assert len(scores[0]) > 1 and scores[0][-1]["end"] == len(test.texts[0])
    mean = np.mean([list(w["probabilities"].values()) for w in scores[0]], axis=0)
    np.testing.assert_allclose(mean, proba[0])
    assert (proba.argmax(axis=1) == test.targets(model.labels_)).mean() > 0.8

    model.save(tmp_path / "m")
    again = docsort.load(tmp_path / "m")
    assert again.long_doc_ == model.long_doc_
    np.testing.assert_array_equal(again.predict_proba(test.texts), proba)
