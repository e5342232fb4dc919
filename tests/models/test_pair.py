"""The pair kind scores real USPTO phrase pairs with real minilm weights, cross- and bi-encoder.

Small on purpose (a few dozen rows, 32 tokens, one or two epochs) so each test takes seconds.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import docsort
from docsort.data.dataset import Dataset, from_frame, grouped_split
from docsort.errors import DocsortError
from docsort.models import Classifier, Scorer, create, load
from docsort.models.kinds.pair import (
    code_levels,
    context_title,
    context_vocabulary,
    read_context_map,
)
from tests.conftest import USPTO_P2P, USPTO_TITLES

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAST = {"max_length": 32, "batch_size": 8, "epochs": 2, "context_map": str(USPTO_TITLES)}


@pytest.fixture(scope="module")
def cross_model(uspto_rows):
    return create("pair", {**FAST, "epochs": 3, "patience": 3}).fit(uspto_rows)


def test_context_titles_fall_back_to_the_parent_code_then_the_code() -> None:
    titles = read_context_map(USPTO_TITLES)
    assert context_title("A47", titles).startswith("furniture")  # capitals read as lower case
    assert context_title("A47Z", titles) == titles["A47"]  # no such subclass: its class
    assert context_title("H77", titles) == titles["H"]  # no such class: its section
    assert context_title("Q12", titles) == "Q12"  # nothing known: the code itself


def test_a_context_map_without_the_columns_is_a_user_error(tmp_path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("cpc,name\nA47,furniture\n")
    with pytest.raises(DocsortError, match="no column 'code'"):
        read_context_map(path)
    with pytest.raises(DocsortError, match="context map not found"):
        read_context_map(tmp_path / "absent.csv")


def test_training_lowers_the_loss_and_learns_the_training_pairs(cross_model, uspto_rows) -> None:
    history = cross_model.history_
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    scores = cross_model.predict_scores(uspto_rows)
    assert scores.shape == (42,) and scores.min() >= 0.0 and scores.max() <= 1.0
    assert np.corrcoef(scores, uspto_rows.scores())[0, 1] > 0.3
    assert cross_model.labels_.names == ("0", "0.25", "0.5", "0.75", "1")


def test_save_and_load_give_identical_scores(cross_model, uspto_rows, tmp_path) -> None:
    cross_model.save(tmp_path / "pair")
    again = docsort.load(tmp_path / "pair")
    assert again.kind == "pair" and again.output == "scores"
    np.testing.assert_allclose(
        again.predict_scores(uspto_rows), cross_model.predict_scores(uspto_rows), atol=1e-5
    )
    # the context map travels with the model: the CSV is not read again
    assert again.context_titles_ == cross_model.context_titles_
    pairs = [("abatement", "eliminating process", "A47")]
    assert again.predict(pairs) == pytest.approx(cross_model.predict(pairs), abs=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        # slow: 30-90 s by load; the bi-encoder trains, saves and loads in the next case too
        pytest.param({"variant": "bi", "loss": "pearson"}, marks=pytest.mark.slow),
        {"variant": "bi", "loss": "ordinal", "contrastive_weight": 0.2, "lora": True},
        {"variant": "cross", "loss": "ordinal", "contrastive_weight": 0.2},
    ],
)
def test_variants_and_losses_train_save_and_load(uspto_rows, tmp_path, params) -> None:
    model = create("pair", {**FAST, **params}).fit(uspto_rows)
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]
    scores = model.predict_scores(uspto_rows)
    assert np.isfinite(scores).all() and scores.std() > 0
    again = load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(again.predict_scores(uspto_rows), scores, atol=1e-5)


@pytest.mark.slow  # slow: 112-221 s at load 7 in the default run; the kind's other tests stay
def test_the_bi_encoder_embeds_each_distinct_phrase_once(uspto_rows) -> None:
    model = create("pair", {**FAST, "variant": "bi", "epochs": 1}).fit(uspto_rows)
    doubled = uspto_rows.subset(list(range(len(uspto_rows))) * 2)
    scores = model.predict_scores(doubled)
    np.testing.assert_allclose(scores[:42], scores[42:], atol=1e-6)


@pytest.mark.slow  # slow: 112-221 s at load 7 in the default run; the kind's other tests stay
def test_with_no_validation_share_every_epoch_runs_and_the_last_is_kept(uspto_rows) -> None:
    model = create("pair", {**FAST, "valid_share": 0, "patience": 1, "epochs": 3}).fit(uspto_rows)
    assert [h["valid_score"] for h in model.history_] == [None, None, None]
    assert model.best_epoch_ == 3 and model.best_score_ is None
    assert np.isfinite(model.predict_scores(uspto_rows)).all()
    with pytest.raises(DocsortError, match=r"valid_share must be a number in \[0, 1\)"):
        create("pair", {**FAST, "valid_share": 1.0}).fit(uspto_rows)


def test_without_a_context_column_the_model_ignores_contexts(uspto_rows) -> None:
    bare = Dataset(uspto_rows.texts, uspto_rows.labels, text_pair=uspto_rows.text_pair)
    model = create("pair", {**FAST, "context_map": None, "epochs": 1}).fit(bare)
    assert not model.uses_context_
    np.testing.assert_allclose(
        model.predict_scores(uspto_rows), model.predict_scores(bare), atol=1e-6
    )


def test_bad_columns_and_inputs_are_user_errors(uspto_rows, cross_model) -> None:
    frame = pd.read_csv(USPTO_P2P).head(20)
    with pytest.raises(DocsortError, match="no column 'phrase'"):
        from_frame(frame, text="anchor", label="score", pair="phrase")
    texts_only = from_frame(frame, text="anchor", label="score")
    with pytest.raises(DocsortError, match="--pair COLUMN"):
        create("pair", FAST).fit(texts_only)
    words = from_frame(frame, text="anchor", label="target", pair="target")
    with pytest.raises(DocsortError, match="is not a number"):
        create("pair", FAST).fit(words)
    no_context = Dataset(uspto_rows.texts, text_pair=uspto_rows.text_pair)
    with pytest.raises(DocsortError, match="--context COLUMN"):
        cross_model.predict_scores(no_context)
    # a scorer's role has no label probabilities at all (as a scikit-learn regressor has no
    # predict_proba), rather than a classifier's method that refuses
    assert isinstance(cross_model, Scorer) and not isinstance(cross_model, Classifier)
    assert not hasattr(cross_model, "predict_proba") and not hasattr(cross_model, "calibrate")
    with pytest.raises(DocsortError, match="loss must be one of"):
        create("pair", {**FAST, "loss": "hinge"}).fit(uspto_rows)


def test_the_split_by_anchor_keeps_each_anchor_on_one_side(uspto_rows) -> None:
    train, test = grouped_split(uspto_rows, uspto_rows.texts, 0.2, seed=0)
    assert len(train) + len(test) == 42
    assert not set(train.texts) & set(test.texts)
    assert len(set(test.texts)) == 2  # 20 % of the 10 anchors
    again = grouped_split(uspto_rows, uspto_rows.texts, 0.2, seed=0)[1]
    assert again.texts == test.texts and again.context == test.context


# -- context as a learnt embedding (context_mode: embedding) ----------------------------------
def test_a_rare_code_is_read_through_its_parents_and_an_unknown_one_adds_nothing() -> None:
    titles = read_context_map(USPTO_TITLES)
    codes = ["A47"] * 6 + ["A61"] * 2 + ["H04"] * 5
    vocabulary = context_vocabulary(codes, titles, min_rows=5)
    # A61 (2 rows) has no vector of its own; its section A (8 rows) and H (5) do
    assert set(vocabulary) == {"A", "A47", "H", "H04"}
    assert sorted(vocabulary.values()) == [1, 2, 3, 4]  # 0 is "no level"
    assert code_levels("A47B", vocabulary) == ["A47", "A"]  # a subclass never seen: its class
    assert code_levels("A61", vocabulary) == ["A"]
    assert code_levels("Q12", vocabulary) == []


@pytest.mark.parametrize(
    "params",
    [
        {"variant": "cross", "context_fusion": "tokens"},
        {"variant": "bi", "context_fusion": "pooled"},  # each phrase embedded once per context
    ],
)
def test_a_context_embedding_trains_reads_the_code_and_saves(uspto_rows, tmp_path, params) -> None:
    params = {**FAST, "context_mode": "embedding", "context_min_rows": 1, **params}
    model = create("pair", {**params, "valid_share": 0}).fit(uspto_rows)  # every code trained
    assert model.uses_context_ and set(model.context_vocab_) >= set(uspto_rows.context)
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]
    assert np.abs(model.net_.context_projection.weight.detach().numpy()).max() > 0  # learnt
    known = sorted(set(uspto_rows.context))[:2]
    pair = ("abatement", "eliminating process")
    rows = [(*pair, known[0]), (*pair, known[1]), (*pair, known[0] + "Z"), (*pair, "Q12"),
            (*pair, "Q99")]  # fmt: skip
    scores = model.predict(rows)
    assert scores[0] != pytest.approx(scores[1], abs=1e-6)  # the code is read
    assert scores[2] == pytest.approx(scores[0], abs=1e-6)  # an unseen subclass: its class
    assert scores[3] == pytest.approx(scores[4], abs=1e-6)  # nothing known: no context
    again = load(model.save(tmp_path / "m"))
    assert again.context_vocab_ == model.context_vocab_
    np.testing.assert_allclose(again.predict(rows), scores, atol=1e-5)
    np.testing.assert_allclose(
        again.predict_scores(uspto_rows), model.predict_scores(uspto_rows), atol=1e-5
    )
    with pytest.raises(DocsortError, match="context_mode: text or none"):
        again.export_network()


def test_context_mode_none_ignores_the_column(uspto_rows) -> None:
    bare = Dataset(uspto_rows.texts, uspto_rows.labels, text_pair=uspto_rows.text_pair)
    blind = create("pair", {**FAST, "context_mode": "none", "epochs": 1}).fit(uspto_rows)
    assert not blind.uses_context_
    np.testing.assert_allclose(
        blind.predict_scores(uspto_rows), blind.predict_scores(bare), atol=1e-6
    )
    with pytest.raises(DocsortError, match="context_mode must be one of"):
        create("pair", {**FAST, "context_mode": "vector"}).fit(uspto_rows)


def test_the_context_vocabulary_holds_training_codes_only_and_cannot_be_empty(uspto_rows) -> None:
    held = [i for i, code in enumerate(uspto_rows.context) if code == "C08"]
    kept = [i for i in range(len(uspto_rows)) if i not in held]
    train, valid = uspto_rows.subset(kept), uspto_rows.subset(held)
    params = {**FAST, "context_mode": "embedding", "context_min_rows": 1, "epochs": 1}
    model = create("pair", params).fit(train, valid)
    assert "C08" not in model.context_vocab_ and "C" in model.context_vocab_  # its section
    with pytest.raises(DocsortError, match="context_min_rows"):
        create("pair", {**params, "context_min_rows": 1000}).fit(uspto_rows)
