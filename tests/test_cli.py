"""The command line as a user meets it: real runs, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli, train_arxiv

REQUIRED_METRICS = {
    "accuracy",
    "macro_f1",
    "micro_f1",
    "weighted_f1",
    "per_class",
    "confusion_matrix",
    "ece",
    "n",
    "seconds",
    "docs_per_second",
    "cost_per_1k",
}


def train_with_config(data: Path, config_text: str, out: Path):
    """Train on the arXiv rows' titles with a YAML config written beside ``out``."""
    config = out.with_name(out.name + ".yaml")
    config.write_text(config_text, encoding="utf-8")
    return train_arxiv(data, out, "--config", str(config), text="title")


def assert_user_error(result, *fragments: str) -> None:
    """Exit status 2, a single 'error:' line naming the problem, and no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["train"],
        ["eval"],
        ["predict"],
        ["compare"],
        ["demo"],
        ["datasets", "list"],
        ["datasets", "show"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "Usage" in result.stdout


def test_eval_writes_metrics_report_and_plots(
    trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    result = run_cli("eval", str(trained_model_dir), str(arxiv_csv), "--out", str(tmp_path / "ev"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(metrics) >= REQUIRED_METRICS
    assert metrics["n"] == 240 and metrics["accuracy"] > 0.9  # rows it was trained on
    for name in ["report.md", "confusion_matrix.png", "reliability.png", "per_class_f1.png"]:
        assert (tmp_path / "ev" / name).stat().st_size > 0
    # every row's prediction, for error analysis without rerunning the model
    lines = (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["row"] for r in rows] == list(range(240))
    assert [r["true"] for r in rows] == pd.read_csv(arxiv_csv)["category"].tolist()
    assert all(r["correct"] == (r["label"] == r["true"]) for r in rows)
    assert sum(r["correct"] for r in rows) / 240 == pytest.approx(metrics["accuracy"])
    assert all(len(r["probabilities"]) <= 5 and r["label"] in r["probabilities"] for r in rows)
    wrong = [r for r in rows if not r["correct"]]
    report = (tmp_path / "ev" / "report.md").read_text()
    assert ("## Most confident mistakes" in report) == bool(wrong)


def test_predict_from_csv_stdin_and_folder(
    trained_model_dir: Path, arxiv_frame: pd.DataFrame, tmp_path: Path
) -> None:
    rows = arxiv_frame.head(6).assign(id=range(100, 106))
    rows.drop(columns=["category", "label"]).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.jsonl"
    result = run_cli(
        "predict",
        str(trained_model_dir),
        str(tmp_path / "new.csv"),
        "--out",
        str(out),
        "--keep",
        "id",
    )
    assert result.returncode == 0, result.stderr
    predictions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["id"] for p in predictions] == list(range(100, 106))
    assert [p["label"] for p in predictions] == list(rows.category)  # trained on these rows
    first = predictions[0]
    assert set(first["probabilities"]) == set(arxiv_frame.category)
    assert first["confidence"] == max(first["probabilities"].values())

    result = run_cli(
        "predict",
        str(trained_model_dir),
        "-",
        "--out",
        "-",
        "--top-k",
        "2",
        stdin="quantum entanglement of qubits\n\n"
        "a consistent estimator for panel data regression with instruments\n",
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["label"] for p in lines] == ["quant-ph", "econ.EM"]
    assert all(len(p["probabilities"]) == 2 for p in lines)

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("galaxies, dark matter and stellar spectra", encoding="utf-8")
    result = run_cli("predict", str(trained_model_dir), str(folder), "--out", "-")
    assert json.loads(result.stdout)["label"] == "astro-ph"


def test_compare_scores_models_on_the_same_rows(
    trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    other = tmp_path / "logreg"
    config = tmp_path / "logreg.yaml"
    config.write_text("classifier: logreg\nchar_ngrams: null\n", encoding="utf-8")
    assert train_arxiv(arxiv_csv, other, "--config", str(config)).returncode == 0
    result = run_cli(
        "compare",
        str(trained_model_dir),
        str(other),
        "--data",
        str(arxiv_csv),
        "--out",
        str(tmp_path / "cmp"),
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [r["model"] for r in rows] == ["tfidf", "logreg"]
    assert {r["n"] for r in rows} == {240}
    assert (tmp_path / "cmp" / "accuracy_vs_throughput.png").stat().st_size > 0


def test_multi_label_train_and_eval(tmp_path: Path) -> None:
    from tests.conftest import ARXIV_MULTI

    frame = pd.read_csv(ARXIV_MULTI).head(300)
    frame.to_csv(tmp_path / "ml.csv", index=False)
    model = tmp_path / "ml"
    result = run_cli(
        "train",
        str(tmp_path / "ml.csv"),
        "--text",
        "titles,summaries",
        "--label",
        "terms",
        "--valid-split",
        "0.2",
        "--out",
        str(model),
    )
    assert result.returncode == 0, result.stderr
    result = run_cli("eval", str(model), str(tmp_path / "ml.csv"), "--out", str(tmp_path / "ev"))
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["multi_label"] and {"hamming_loss", "subset_accuracy"} <= set(metrics)
    rows = [json.loads(line) for line in (tmp_path / "ev" / "predictions.jsonl").open()]
    assert len(rows) == 300 and all(isinstance(r["true"], list) for r in rows)
    assert all(r["correct"] == (set(r["true"]) == set(r["labels"])) for r in rows)
    assert sum(r["correct"] for r in rows) / 300 == pytest.approx(metrics["subset_accuracy"])
    report = (tmp_path / "ev" / "report.md").read_text()
    surest_wrong = max(r["confidence"] for r in rows if not r["correct"])
    assert "## Most confident mistakes" in report and f"{surest_wrong:.4f}" in report


def test_datasets_list_and_show() -> None:
    listing = run_cli("datasets", "list")
    for name in ["20ng", "r8", "r52", "banking77", "bbc", "imdb", "reuters"]:
        assert name in listing.stdout
    shown = run_cli("datasets", "show", "bbc", "--split", "test")
    assert "445 rows, 5 labels" in shown.stdout and "business" in shown.stdout
    assert_user_error(run_cli("datasets", "show", "nope"), "unknown")


def test_models_list_and_fetch() -> None:
    listing = run_cli("models", "list")
    assert listing.returncode == 0
    rows = [line.split("│") for line in listing.stdout.splitlines() if "│" in line]
    minilm = next(cells for cells in rows if cells[1].strip() == "minilm")
    assert minilm[3].strip() == "yes"
    assert_user_error(run_cli("models", "fetch", "no-such-model"), "no-such-model")


# -- bad input: one clear line, exit 2, nothing half-written ------------------------------


def test_missing_file(tmp_path: Path) -> None:
    result = run_cli("train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m"))
    assert_user_error(result, "file not found", "nope.csv")
    assert not (tmp_path / "m").exists()


def test_unknown_column_lists_existing_ones(arxiv_csv: Path, tmp_path: Path) -> None:
    result = train_arxiv(arxiv_csv, tmp_path / "m", text="body")
    assert_user_error(result, "no column 'body'", "'title'", "'abstract'")


def test_empty_rows_are_skipped_with_a_count_or_fail_when_strict(
    arxiv_frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame = arxiv_frame.copy()
    frame.loc[:2, "abstract"] = ""
    frame.loc[:2, "title"] = None
    frame.to_csv(tmp_path / "holes.csv", index=False)
    args = [
        "train",
        str(tmp_path / "holes.csv"),
        "--text",
        "title,abstract",
        "--label",
        "category",
        "--out",
        str(tmp_path / "m"),
    ]
    skipped = run_cli(*args)
    assert skipped.returncode == 0 and "skipped 3 row(s)" in skipped.stderr
    assert_user_error(run_cli(*args, "--strict"), "3 row(s) have empty text")


def test_unknown_model_kind(arxiv_csv: Path, tmp_path: Path) -> None:
    result = train_arxiv(arxiv_csv, tmp_path / "m", "--model", "bert-large", text="title")
    assert_user_error(result, "unknown model kind 'bert-large'", "tfidf")
    assert not (tmp_path / "m").exists()


def test_labels_the_model_lacks(
    trained_model_dir: Path, arxiv_frame: pd.DataFrame, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.yaml"
    names = sorted(arxiv_frame.category.unique()) + ["math.AG"]
    labels.write_text("labels:\n" + "".join(f"  - name: {n}\n" for n in names), encoding="utf-8")
    result = run_cli(
        "predict",
        str(trained_model_dir),
        "-",
        "--out",
        str(tmp_path / "p.jsonl"),
        "--labels",
        str(labels),
        stdin="some text\n",
    )
    assert_user_error(result, "'math.AG' is unknown to this model")
    assert not (tmp_path / "p.jsonl").exists()

    frame = arxiv_frame.head(10).copy()
    frame.loc[0, "category"] = "math.AG"
    frame.to_csv(tmp_path / "eval.csv", index=False)
    result = run_cli(
        "eval", str(trained_model_dir), str(tmp_path / "eval.csv"), "--out", str(tmp_path / "ev")
    )
    assert_user_error(result, "'math.AG' is unknown to this model")
    assert not (tmp_path / "ev").exists()


def test_corrupt_model_dir(trained_model_dir: Path, tmp_path: Path) -> None:
    assert_user_error(
        run_cli("predict", str(tmp_path), "-", "--out", "-", stdin="x\n"), "is not a docsort model"
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "docsort.yaml").write_text((trained_model_dir / "docsort.yaml").read_text())
    (broken / "tfidf.joblib").write_bytes(b"\x00garbage")
    assert_user_error(
        run_cli("predict", str(broken), "-", "--out", "-", stdin="x\n"), "weights cannot be read"
    )


def test_malformed_jsonl_and_config(
    trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken\n', encoding="utf-8")
    assert_user_error(
        run_cli("predict", str(trained_model_dir), str(bad), "--out", "-"), "line 2: not valid JSON"
    )
    result = train_with_config(arxiv_csv, "C: 1\nnot_a_param: 3\n", tmp_path / "m")
    assert_user_error(result, "no parameter 'not_a_param'")


def test_a_failed_run_keeps_the_previous_model(
    trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    import shutil

    target = tmp_path / "model"
    shutil.copytree(trained_model_dir, target)
    before = (target / "docsort.yaml").read_text()
    result = train_with_config(arxiv_csv, "classifier: forest\n", target)
    assert_user_error(result, "classifier must be one of")
    assert (target / "docsort.yaml").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.yaml"]
