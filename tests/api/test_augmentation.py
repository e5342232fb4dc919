"""Augmentation through the API and the CLI: marked rows, kept out of validation and
evaluation, written by a real seq2seq model (a tiny randomly initialised Marian network with
minilm's tokenizer: no translation weights install offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from docsort.api import train
from docsort.api.augmentation import AugmentSpec, augment_rows
from docsort.data.dataset import (
    AUGMENTATION,
    ORIGIN,
    Dataset,
    folds_keeping_written_in_training,
    from_frame,
    real_rows,
    stratified_split,
)
from docsort.data.loaders import read_table
from docsort.errors import DocsortError


@pytest.fixture(scope="module")
def rows(arxiv_frame: pd.DataFrame) -> Dataset:
    frame = arxiv_frame.groupby("category").head(10)
    return from_frame(frame, text=["title", "abstract"], label="category", name="arxiv")


def written_copy(data: Dataset) -> Dataset:
    """``data`` plus one marked row per real row (its text reversed), as augment writes them."""
    n = len(data)
    return Dataset(
        texts=[*data.texts, *(t[::-1] for t in data.texts)],
        labels=[*data.labels, *data.labels],
        label_set=data.label_set,
        extra={AUGMENTATION: [""] * n + ["paraphrase"] * n, ORIGIN: [*range(n), *range(n)]},
    )


def test_a_split_never_holds_out_a_written_row_nor_trains_on_a_held_out_rows_copy(
    rows: Dataset,
) -> None:
    data = written_copy(rows)
    train_part, valid_part = stratified_split(data, 0.25, seed=1)
    assert not valid_part.augmented().any()
    held_out = set(valid_part.extra[ORIGIN])
    marks = zip(train_part.extra[ORIGIN], train_part.augmented(), strict=True)
    train_written = [origin for origin, written in marks if written]
    assert train_written and not set(train_written) & held_out
    # every training source keeps its copy; the held-out rows are the same as without copies
    assert len(train_written) == int((~train_part.augmented()).sum())
    plain_valid = stratified_split(rows, 0.25, seed=1)[1]
    assert valid_part.texts == plain_valid.texts


def test_calibration_folds_score_real_rows_only(rows: Dataset) -> None:
    data = written_copy(rows)
    y = np.asarray(data.labels)
    folds = folds_keeping_written_in_training(data, y, 3)
    marked = data.augmented()
    origins = np.asarray(data.extra[ORIGIN])
    for train_idx, test_idx in folds:
        assert not marked[test_idx].any()
        assert not set(origins[train_idx[marked[train_idx]]]) & set(origins[test_idx])
    assert folds_keeping_written_in_training(rows, np.asarray(rows.labels), 3) is None
    train(data, kind="tfidf")  # the kind fits on these folds


def test_evaluation_leaves_written_rows_out(rows: Dataset, tmp_path: Path) -> None:
    data = written_copy(rows)
    kept, n = real_rows(data)
    assert n == len(rows) and kept.texts == rows.texts
    with pytest.raises(DocsortError, match="every row was written by augmentation"):
        real_rows(data.subset(np.flatnonzero(data.augmented())))
    model_dir, path = tmp_path / "m", tmp_path / "augmented.csv"
    train(rows, kind="tfidf", out=model_dir)
    pd.DataFrame({"text": data.texts, "label": data.labels, **data.extra}).to_csv(path, index=False)
    result = run_cli("eval", str(model_dir), str(path), "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr
    assert f"left out {len(rows)} row(s) written by augmentation" in result.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n"] == len(rows)


def test_backtranslation_writes_marked_rows_that_train_reads_back(
    rows: Dataset, marian: Path, arxiv_frame: pd.DataFrame, tmp_path: Path
) -> None:
    source, out = tmp_path / "rows.csv", tmp_path / "augmented.jsonl"
    arxiv_frame.groupby("category").head(10).to_csv(source, index=False)
    result = run_cli(
        "augment", str(source), "--text", "title", "--label", "category", "--method",
        "backtranslate", "--translator", str(marian), "--back-translator", str(marian),
        "--classes", "cs.CL,q-bio", "--n", "2", "--no-filter", "--max-tokens", "12",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sources"] == 20 and report["written"] == 40
    assert report["kept"] + sum(report["dropped"].values()) == 40
    table = read_table(out)
    table[AUGMENTATION] = table[AUGMENTATION].fillna("")
    real, new = table[table[AUGMENTATION] == ""], table[table[AUGMENTATION] != ""]
    assert len(real) == 80 and len(new) == report["kept"] > 0
    assert set(new[AUGMENTATION]) == {"backtranslate"}
    assert set(new["label"]) <= {"cs.CL", "q-bio"}
    sources = real.set_index(ORIGIN)["label"]
    assert (new["label"].to_numpy() == sources.loc[new[ORIGIN]].to_numpy()).all()
    trained = run_cli("train", str(out), "--out", str(tmp_path / "model"))
    assert trained.returncode == 0, trained.stderr


def test_a_training_config_augments_the_training_rows_only(
    rows: Dataset, marian: Path, tmp_path: Path
) -> None:
    spec = {"method": "backtranslate", "translator": str(marian), "classes": ["cs.CL"],
            "back_translator": str(marian), "n": 1, "filter": False, "max_tokens": 12}  # fmt: skip
    model = train(rows, kind="tfidf", params={"augment": spec}, valid_split=0.3)
    recorded = model.trained_on_["augment"]
    assert recorded["method"] == "backtranslate" and recorded["classes"] == ["cs.CL"]
    assert recorded["sources"] == 7  # the 10 cs.CL rows less the 3 held out for validation


def test_the_rows_augment_rows_adds_are_marked_with_their_source(
    rows: Dataset, marian: Path
) -> None:
    spec = AugmentSpec(method="backtranslate", translator=str(marian),
                       back_translator=str(marian), classes=("econ.EM",), filter=True,
                       max_tokens=12)  # fmt: skip
    out, report = augment_rows(rows, spec)
    assert out.texts[: len(rows)] == rows.texts
    assert report["kept"] == len(out) - len(rows)
    assert report["filter"] == f"tfidf trained on the {len(rows)} real rows"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--classes", "nope"], "no label 'nope' in the data"),
        (["--method", "backtranslate"], "needs translator and back_translator"),
        (["--n", "4"], "at most 3"),
        (["--out-suffix"], "unknown file type"),
        (["--max-copied", "0"], "augment max_copied must be"),
    ],
)
def test_bad_augment_options_are_one_line(
    options: list[str], message: str, arxiv_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / ("rows.xyz" if options == ["--out-suffix"] else "rows.csv")
    options = [] if options == ["--out-suffix"] else options
    result = run_cli("augment", str(arxiv_csv), "--text", "title", "--label", "category",
                     *options, "--out", str(out))  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_an_unknown_augment_key_in_a_config_is_one_line(rows: Dataset) -> None:
    with pytest.raises(DocsortError, match="augment: unknown key 'nn'"):
        train(rows, kind="tfidf", params={"augment": {"nn": 2}})


def test_a_recorded_spec_reads_back_as_the_same_spec() -> None:
    """What a model records (for retrain) gives back the spec asked for: a local endpoint
    asked with no key (api_key_env None) is not sent the default variable's key later."""
    spec = AugmentSpec(method="paraphrase", base_url="http://localhost:8080/v1",
                       generator="local", api_key_env=None, max_tokens=40, threads=2)  # fmt: skip
    again = AugmentSpec.from_mapping(spec.record())
    assert again == AugmentSpec(**{**spec.__dict__, "threads": None})  # threads: the run's
    assert again.api_key_env is None
