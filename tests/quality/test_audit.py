"""docsort audit on real BBC rows with 5 % of the labels flipped at random: cleanlab's
confident learning on out-of-fold tfidf probabilities finds most flips, --drop writes a file
docsort train accepts, and bad requests are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from docsort.api import Columns
from docsort.api.audit import AuditRequest, run_audit
from docsort.cli import app
from docsort.errors import DocsortError
from docsort.quality.audit import Suspect, cleaned_frame
from tests.conftest import ARXIV_MULTI

ROWS = 400
FLIPPED = 20  # 5 %
# word unigrams only: five folds train in ~6 s of CPU; char n-grams found no more flips here
CONFIG = "char_ngrams: null\nword_ngrams: [1, 1]\n"
# measured on five draws of 400 rows and 20 flips (seeds 0-4): recall 0.60-0.95, precision
# 0.76-0.88; flagging 20 rows at random would find one flip (precision 0.05)
RECALL_FLOOR = 0.6
PRECISION_FLOOR = 0.7


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[int], pd.DataFrame]:
    """400 BBC training rows (a seeded draw) as a CSV with 20 labels flipped to another label,
    and an empty-text row at position 3 (skipped, so Dataset rows and input rows differ)."""
    from docsort.data.builtin import load_builtin

    frame = load_builtin("bbc", "train")
    frame = frame.iloc[np.random.default_rng(101).permutation(len(frame))[:ROWS]]
    frame = frame[["text", "label"]].reset_index(drop=True)
    rng = np.random.default_rng(1)
    names = sorted(frame.label.unique())
    flipped = rng.choice(ROWS, FLIPPED, replace=False)
    for i in flipped:
        frame.loc[i, "label"] = rng.choice([n for n in names if n != frame.label[i]])
    frame = pd.concat([frame.iloc[:3], pd.DataFrame({"text": [""], "label": ["tech"]}),
                       frame.iloc[3:]], ignore_index=True)  # fmt: skip
    rows = {int(i) + (i >= 3) for i in flipped}  # positions in the written file
    folder = tmp_path_factory.mktemp("audit")
    path = folder / "noisy.csv"
    frame.to_csv(path, index=False)
    (folder / "tfidf.yaml").write_text(CONFIG)
    return path, rows, frame


@pytest.fixture(scope="module")
def audited(noisy: tuple[Path, set[int], pd.DataFrame]) -> Path:
    path, _, _ = noisy
    out = path.parent / "report"
    config = path.parent / "tfidf.yaml"
    args = ["audit", str(path), "--model", "tfidf", "--config", str(config), "--folds", "5"]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--drop"])
    assert result.exit_code == 0, result.output
    assert "suspect label(s) in 400 rows" in result.output
    return out


def test_the_audit_finds_most_flipped_labels(noisy, audited: Path) -> None:
    _, flipped, frame = noisy
    suspects = pd.read_csv(audited / "suspects.csv")
    assert list(suspects.columns[:5]) == ["rank", "row", "given_label", "suggested_label", "score"]
    found = set(suspects.row)
    recall = len(found & flipped) / len(flipped)
    precision = len(found & flipped) / len(found)
    assert recall >= RECALL_FLOOR and precision >= PRECISION_FLOOR, (recall, precision)
    # row is the position in the input: its given label is the file's label at that row
    assert (frame.label[suspects.row].to_numpy() == suspects.given_label.to_numpy()).all()
    assert (suspects.suggested_label != suspects.given_label).all()
    assert suspects["rank"].tolist() == list(range(1, len(suspects) + 1))
    assert suspects.score.is_monotonic_increasing  # most suspect (lowest quality) first
    summary = json.loads((audited / "audit.json").read_text())
    assert summary["rows"] == ROWS and summary["skipped"] == 1
    assert summary["suspects"] == len(suspects)
    report = (audited / "report.md").read_text()
    assert "out-of-fold accuracy" in report and f"| 1 | {suspects.row[0]} |" in report


def test_drop_writes_the_input_without_the_suspects_and_train_accepts_it(
    noisy, audited: Path
) -> None:
    path, _, frame = noisy
    suspects = pd.read_csv(audited / "suspects.csv")
    cleaned = pd.read_csv(audited / "cleaned.csv", keep_default_na=False, na_values=[""])
    assert len(cleaned) == len(frame) - len(suspects)
    written = pd.read_csv(path, keep_default_na=False, na_values=[""])
    kept = written.drop(index=suspects.row).reset_index(drop=True)
    pd.testing.assert_frame_equal(cleaned, kept, check_dtype=False)
    model = path.parent / "cleaned-model"
    config = path.parent / "tfidf.yaml"
    args = ["train", str(audited / "cleaned.csv"), "--config", str(config), "--out", str(model)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (model / "docsort.yaml").is_file()


def test_relabel_replaces_only_the_suspects_labels_keeping_the_column_type() -> None:
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 1], "id": [7, 8, 9]})
    suspect = Suspect(1, 2, "1", "0", 0.01, 0.01, 0.9, "c")
    fixed = cleaned_frame(frame, [suspect], "label", "relabel")
    assert fixed.label.tolist() == [0, 1, 0] and fixed.id.tolist() == [7, 8, 9]
    assert isinstance(fixed.label[2], int)


def test_too_few_rows_per_label_for_the_folds_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    texts = [f"stock markets and shares report {i}" for i in range(8)]
    texts += ["football match tonight", "the team won the cup", "a goal in extra time"]
    labels = ["business"] * 8 + ["sport"] * 3
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    with pytest.raises(DocsortError, match=r"label 'sport' has 3 row\(s\): with --folds 5"):
        run_audit(AuditRequest(path, folds=5))
    with pytest.raises(DocsortError, match="--folds must be a whole number from 2"):
        run_audit(AuditRequest(path, folds=1))


def test_multi_label_data_and_unknown_columns_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    pd.read_csv(ARXIV_MULTI).head(60).to_csv(path, index=False)
    columns = Columns.parse("titles", label="terms")
    with pytest.raises(DocsortError, match="multi-label: docsort audit checks single-label"):
        run_audit(AuditRequest(path, columns=columns))
    args = ["audit", str(path), "--text", "body", "--out", str(tmp_path / "a")]
    result = CliRunner().invoke(app, args)  # main() prints a DocsortError as one line, exit 2
    assert isinstance(result.exception, DocsortError)
    message = str(result.exception)
    assert "no column 'body'" in message and "__docsort_row__" not in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "a").exists()


def test_a_labels_file_listing_a_label_no_row_has_is_audited_on_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "small.csv"
    texts = [f"shares and stock markets fell on day {i}" for i in range(6)]
    texts += [f"the team won the football match {i}" for i in range(6)]
    pd.DataFrame({"text": texts, "label": ["business"] * 6 + ["sport"] * 6}).to_csv(path)
    labels = tmp_path / "labels.yaml"
    labels.write_text("labels: [business, sport, weather]\n")
    out = tmp_path / "audit"
    result = run_audit(AuditRequest(path, labels=labels, folds=2, out=out, fix="relabel"))
    assert result.summary["labels"] == 2 and set(result.summary["per_label"]) == {
        "business",
        "sport",
    }
    assert len(pd.read_csv(out / "cleaned.csv")) == 12
