"""docsort suggest on a pool of real arXiv abstracts: n distinct rows, exact copies counted
once, rows pointing back at the pool, margin picking closer calls than random, a committee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import docsort
from docsort.api.active import SuggestRequest, run_suggest
from docsort.cli import app
from docsort.errors import DocsortError
from docsort.quality.active import disagreement, pick, uncertainty
from tests.conftest import ARXIV_8CAT

POOL_ROWS = slice(800, 1100)  # rows the models (the first 30 per category) never saw
WORDS = {"char_ngrams": None}  # word n-grams only: scores the pool in a fraction of a second


@pytest.fixture(scope="module")
def models(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tfidf models (a linear SVM and a logistic regression) on 240 arXiv rows."""
    columns = docsort.api.Columns.parse("title,abstract", label="category")
    data = docsort.api.read_rows(arxiv_frame.to_dict("records"), columns)
    folder = tmp_path_factory.mktemp("models")
    saved = []
    for classifier in ("svm", "logreg"):
        request = docsort.api.TrainRequest(
            data, out=folder / classifier, params={**WORDS, "classifier": classifier},
            columns=columns,
        )  # fmt: skip
        docsort.api.fit(docsort.api.prepare_train(request))
        saved.append(folder / classifier)
    return saved


@pytest.fixture(scope="module")
def margin_of(models: list[Path], pool) -> dict[str, float]:
    """The first model's margin (top probability − second) for every pool text."""
    _, frame = pool
    texts = list(dict.fromkeys(frame.title + "\n" + frame.abstract))
    rows = docsort.predict(docsort.load(models[0]), texts)
    top2 = [sorted(r["probabilities"].values(), reverse=True)[:2] for r in rows]
    return {t: a - b for t, (a, b) in zip(texts, top2, strict=True)}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """300 unseen arXiv rows with an id, the first row repeated twice more (once with its
    spaces doubled: still the same text) at the end."""
    frame = pd.read_csv(ARXIV_8CAT).iloc[POOL_ROWS][["title", "abstract"]]
    frame = frame.reset_index(drop=True)
    copies = frame.iloc[[0, 0]].copy()
    copies.iloc[1, 1] = copies.iloc[1, 1].replace(" ", "  ")
    frame = pd.concat([frame, copies], ignore_index=True)
    frame.insert(0, "id", [f"p{i}" for i in range(len(frame))])
    path = tmp_path_factory.mktemp("pool") / "pool.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_suggest_returns_n_distinct_rows_that_point_back_at_the_pool(models, pool) -> None:
    path, frame = pool
    labels = docsort.load(models[0]).labels_
    result = run_suggest(SuggestRequest(models[:1], path, n=40, columns=_keep("id")))
    rows = result.rows
    assert len(rows) == 40 and result.pool_rows == 302 and result.distinct == 300
    assert len({r["row"] for r in rows}) == 40 and len({r["text"] for r in rows}) == 40
    for r in rows:  # the row's position in the pool file, its id and its text
        source = frame.iloc[r["row"]]
        assert r["id"] == source["id"] and r["text"] == f"{source.title}\n{source.abstract}"
        assert 0 <= r["uncertainty"] <= 1 and r["label"] in labels
    assert [r["rank"] for r in rows] == list(range(1, 41))
    assert any("2 duplicate text(s)" in note for note in result.notes)
    everything = run_suggest(SuggestRequest(models[:1], path, n=400, strategy="random"))
    assert len(everything.rows) == 300  # the three copies of row 0 are one row
    assert next(r for r in everything.rows if r["row"] == 0)["copies"] == 3


def test_margin_picks_closer_calls_than_random(models, pool, margin_of) -> None:
    path, _ = pool
    model = docsort.load(models[0])
    picked = {}
    for strategy in ("margin", "random"):
        rows = run_suggest(SuggestRequest([model], path, n=30, strategy=strategy, seed=3)).rows
        picked[strategy] = np.array([margin_of[r["text"]] for r in rows])
        assert np.allclose([1 - r["uncertainty"] for r in rows], picked[strategy], atol=1e-5)
    # measured on this pool: mean margin 0.12 (margin) vs 0.58 (random), medians 0.07 vs 0.59
    assert picked["margin"].mean() < 0.5 * picked["random"].mean()
    assert np.median(picked["margin"]) < np.percentile(picked["random"], 25)
    # without the cluster spread: exactly the 30 smallest margins of the pool
    plain = run_suggest(SuggestRequest([model], path, n=30, candidates=1)).rows
    smallest = np.sort(list(margin_of.values()))[29]
    assert max(margin_of[r["text"]] for r in plain) <= smallest + 1e-9


def test_a_committee_scores_how_its_models_disagree(models, pool, tmp_path: Path) -> None:
    path, _ = pool
    out = tmp_path / "to_label.csv"
    args = ["suggest", *map(str, models), str(path), "--n", "20"]
    result = CliRunner().invoke(app, [*args, "--strategy", "committee", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["rank", "row", "label", "confidence", "uncertainty",
                                   "copies", "text"]  # fmt: skip
    assert len(table) == 20 and table.row.is_unique
    with pytest.raises(DocsortError, match="give two or more saved models"):
        run_suggest(SuggestRequest(models[:1], path, strategy="committee"))


def test_scores_and_spread_on_known_probabilities() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3]])
    assert uncertainty(p, "margin").round(6).tolist() == [1.0, 0.15, 1.0]
    assert uncertainty(p, "entropy")[2] == pytest.approx(1.0)
    same = disagreement([p, p])
    assert np.allclose(same, 0)
    split = disagreement([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])])
    assert split[0] == pytest.approx(1.0)
    # ten copies of a close call and ten distinct ones: the spread takes one copy
    texts = ["the same confusing text"] * 10 + [f"topic number {i} words w{i}" for i in range(10)]
    scores = np.r_[np.full(10, 0.99), np.linspace(0.9, 0.5, 10)]
    chosen = pick(texts, scores, 5, "margin", candidates=4)
    assert sum(texts[i] == texts[0] for i in chosen) == 1 and len(chosen) == 5


def test_bad_requests_are_one_line(models, pool, tmp_path: Path) -> None:
    path, _ = pool
    one = models[:1]
    for request, message in [
        (SuggestRequest(one, path, strategy="least"), "--strategy must be one"),
        (SuggestRequest(one, path, n=0), "--n must be a whole number"),
        (SuggestRequest(one, path, out=tmp_path / "x.json"), "give a .csv"),
        (SuggestRequest(one, path, columns=_keep("nope")), "no column 'nope'"),
    ]:
        with pytest.raises(DocsortError, match=message):
            run_suggest(request)


def _keep(column: str):
    return docsort.api.Columns.parse(None, keep=column)
