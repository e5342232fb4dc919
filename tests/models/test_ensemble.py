"""Ensembles: the weighted mean of members' probabilities or scores, saved self-contained."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import docsort
from docsort.data.dataset import Dataset, from_frame, stratified_split
from docsort.errors import DocsortError
from docsort.models import create, load
from tests.conftest import USPTO_TITLES, run_cli

WORDS = {"kind": "tfidf"}
CHARS = {"kind": "tfidf", "word_ngrams": None, "char_ngrams": [2, 4], "max_features": 2000}


@pytest.fixture(scope="module")
def splits(arxiv_frame: pd.DataFrame) -> tuple[Dataset, Dataset]:
    data = from_frame(arxiv_frame, text=["title", "abstract"], label="category")
    return stratified_split(data, 0.3, seed=0)


@pytest.fixture(scope="module")
def member_dirs(splits, tmp_path_factory) -> list:
    """Two saved tfidf models (words; character n-grams) and their directories."""
    train, _ = splits
    root = tmp_path_factory.mktemp("members")
    dirs = []
    for name, config in (("words", WORDS), ("chars", CHARS)):
        params = {k: v for k, v in config.items() if k != "kind"}
        dirs.append(create("tfidf", params).fit(train).save(root / name))
    return dirs


def test_probabilities_are_the_weighted_mean_of_the_members(splits, member_dirs) -> None:
    _, test = splits
    words, chars = (load(d) for d in member_dirs)
    model = docsort.ensemble(member_dirs, weights=[3, 1])
    expected = 0.75 * words.predict_proba(test.texts) + 0.25 * chars.predict_proba(test.texts)
    np.testing.assert_allclose(model.predict_proba(test.texts), expected, atol=1e-9)
    assert model.predict(test.texts) == [model.labels_.names[i] for i in expected.argmax(1)]
    equal = docsort.ensemble(member_dirs)
    np.testing.assert_allclose(equal.member_weights(2), [0.5, 0.5])


def test_members_trained_from_configs_and_a_saved_ensemble_stand_alone(splits, tmp_path) -> None:
    train, test = splits
    model = create("ensemble", {"members": [WORDS, CHARS]}).fit(train)
    assert model.member_names_ == ["tfidf-1", "tfidf-2"]
    metrics = docsort.evaluate(model, test)
    assert 0 < metrics["accuracy"] <= 1
    saved = model.save(tmp_path / "ensemble")
    shutil.copytree(saved, tmp_path / "moved")
    shutil.rmtree(saved)  # the copy holds its members: nothing points back
    again = load(tmp_path / "moved")
    assert again.kind == "ensemble" and len(again.members_) == 2
    np.testing.assert_allclose(
        again.predict_proba(test.texts), model.predict_proba(test.texts), atol=1e-9
    )


def test_members_must_agree_and_weights_must_fit(
    splits, member_dirs, arxiv_frame, tmp_path
) -> None:
    train, _ = splits
    with pytest.raises(DocsortError, match="at least two entries"):
        docsort.ensemble(member_dirs[:1])
    with pytest.raises(DocsortError, match="give 2 numbers >= 0"):
        docsort.ensemble(member_dirs, weights=[1])
    with pytest.raises(DocsortError, match="model directory not found"):
        docsort.ensemble([member_dirs[0], tmp_path / "absent"])
    seven = arxiv_frame[arxiv_frame.category != arxiv_frame.category[0]]
    fewer = from_frame(seven, text=["title", "abstract"], label="category")
    other = create("tfidf").fit(fewer).save(tmp_path / "fewer")
    with pytest.raises(DocsortError, match="does not know the same labels"):
        docsort.ensemble([member_dirs[0], other])
    with pytest.raises(DocsortError, match="a saved model takes no parameters"):
        create("ensemble", {"members": [{"model": str(other), "C": 2}, WORDS]}).fit(train)


@pytest.mark.slow  # slow: 112-221 s at load 7 in the default run; the kind's other tests stay
def test_pair_members_are_averaged_as_scores(uspto_rows, tmp_path) -> None:
    fast = {"max_length": 32, "batch_size": 8, "epochs": 1, "context_map": str(USPTO_TITLES)}
    dirs = [
        create("pair", {**fast, "seed": seed}).fit(uspto_rows).save(tmp_path / f"p{seed}")
        for seed in (0, 1)
    ]
    first, second = (load(d) for d in dirs)
    model = docsort.ensemble(dirs)
    assert model.output == "scores"
    expected = (first.predict_scores(uspto_rows) + second.predict_scores(uspto_rows)) / 2
    np.testing.assert_allclose(model.predict_scores(uspto_rows), expected, atol=1e-6)
    metrics = docsort.evaluate(model, uspto_rows)
    assert metrics["pearson"] == pytest.approx(np.corrcoef(expected, uspto_rows.scores())[0, 1])
    with pytest.raises(DocsortError, match="gives scores, not label probabilities"):
        model.predict_proba(["abatement"])


def test_pair_and_label_members_do_not_mix(uspto_rows, member_dirs, tmp_path) -> None:
    fast = {"max_length": 32, "batch_size": 8, "epochs": 1, "context_map": str(USPTO_TITLES)}
    pair_dir = create("pair", fast).fit(uspto_rows).save(tmp_path / "pair")
    with pytest.raises(DocsortError, match="must all give labels or all give scores"):
        docsort.ensemble([member_dirs[0], pair_dir])


def test_the_cli_builds_an_ensemble_that_eval_and_predict_read(
    arxiv_csv, member_dirs, tmp_path
) -> None:
    out = tmp_path / "ens"
    built = run_cli("ensemble", *map(str, member_dirs), "--weights", "2,1", "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert "words 0.67, chars 0.33" in built.stdout
    evaluated = run_cli(
        "eval", str(out), str(arxiv_csv), "--text", "title,abstract", "--label", "category",
        "--out", str(tmp_path / "eval"),
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    bad = run_cli("ensemble", *map(str, member_dirs), "--weights", "2,x", "--out", str(out))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--weights: numbers separated by commas" in bad.stderr


def test_the_cli_trains_an_ensemble_from_a_config_with_a_member_beside_it(
    arxiv_csv, member_dirs, tmp_path
) -> None:
    shutil.copytree(member_dirs[0], tmp_path / "configs" / "words")
    config = tmp_path / "configs" / "ensemble.yaml"
    config.write_text(
        "members:\n  - words\n  - {kind: tfidf, classifier: logreg}\nweights: [1, 1]\n"
    )
    out = tmp_path / "trained"
    result = run_cli(
        "train", str(arxiv_csv), "--text", "title,abstract", "--label", "category",
        "--model", "ensemble", "--config", str(config), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = load(out)
    assert model.member_names_ == ["words", "tfidf"]
    assert model.members_[1].classifier == "logreg"
