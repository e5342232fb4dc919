"""`docsort train --model cascade --config cascade.yaml`, then eval and predict, as a user runs
them: stages in metrics.json, the sweep written, the answering stage in every prediction."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import run_cli, train_arxiv
from tests.test_cli import assert_user_error

CASCADE_YAML = """
stages:
  - {name: cheap, kind: tfidf, word_ngrams: null, char_ngrams: [2, 3], max_features: 300}
  - {name: vectors, kind: static}
select:
  max_escalation_rate: 0.5
"""


@pytest.fixture(scope="module")
def cascade_dir(arxiv_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cascade")
    (folder / "cascade.yaml").write_text(CASCADE_YAML, encoding="utf-8")
    result = train_arxiv(arxiv_csv, folder / "model", "--model", "cascade", "--config",
                         str(folder / "cascade.yaml"), "--valid-split", "0.25")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "sent to the last stage" in result.stdout  # the chosen thresholds are shown
    return folder / "model"


def test_eval_reports_each_stage_and_writes_the_sweep(
    cascade_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ev"
    result = run_cli("eval", str(cascade_dir), str(arxiv_csv), "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    stages = metrics["stages"]
    assert [s["name"] for s in stages] == ["cheap", "vectors"]
    for stage in stages:
        assert {"name", "share", "accuracy", "seconds", "cost_per_1k"} <= set(stage)
    assert sum(s["share"] for s in stages) == pytest.approx(1.0)
    assert metrics["cost_per_1k"] == pytest.approx(sum(s["cost_per_1k"] for s in stages))
    with (out / "threshold_sweep.csv").open() as handle:
        sweep = list(csv.DictReader(handle))
    assert len(sweep) > 10 and {r["stage"] for r in sweep} == {"cheap"}
    assert [r["chosen"] for r in sweep].count("True") == 1
    assert (out / "threshold_sweep.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "## Cascade stages" in report and "threshold_sweep.png" in report
    rows = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    answered = {s["name"]: s["share"] for s in stages}
    for name, share in answered.items():  # each row names the stage that answered it
        assert sum(r["stage"] == name for r in rows) / len(rows) == pytest.approx(share)


def test_predict_records_the_answering_stage(
    cascade_dir: Path, arxiv_frame: pd.DataFrame, tmp_path: Path
) -> None:
    arxiv_frame.head(40).drop(columns=["category"]).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.jsonl"
    result = run_cli("predict", str(cascade_dir), str(tmp_path / "new.csv"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and {r["stage"] for r in rows} <= {"cheap", "vectors"}
    assert all(r["label"] in r["probabilities"] for r in rows)


def test_saved_stage_found_beside_the_config_and_target_option(
    trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    shutil.copytree(trained_model_dir, tmp_path / "first")
    config = tmp_path / "cascade.yaml"
    config.write_text("stages:\n  - {model: first}\n  - {kind: tfidf, classifier: logreg}\n")
    out = tmp_path / "model"
    result = train_arxiv(arxiv_csv, out, "--model", "cascade", "--config", str(config),
                         "--target-accuracy", "0.5")  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((out / "docsort.yaml").read_text())
    assert manifest["params"]["select"] == {"target_accuracy": 0.5}
    state = json.loads((out / "cascade.json").read_text())
    assert [s["name"] for s in state["stages"]] == ["first", "tfidf"]
    assert (out / state["stages"][0]["dir"] / "docsort.yaml").is_file()  # a copy, not a link
    assert state["selection"]["target_met"] and state["selection"]["accuracy"] >= 0.5


@pytest.mark.parametrize(
    ("config", "options", "fragments"),
    [
        ("stages: [{kind: tfidf}]\n", [], ["at least two"]),
        ("stages: [{kind: tfidf}, {kind: nope}]\n", [], ["stage 2", "unknown model kind"]),
        ("stages: [{model: missing}, {kind: tfidf}]\n", [], ["stage 1", "not found"]),
        ("stages: [{kind: tfidf}, {kind: tfidf}]\nselect: {speed: 1}\n", [], ["unknown 'speed'"]),
        (
            "stages: [{kind: tfidf}, {kind: tfidf}]\n",
            ["--max-escalation-rate", "1.5"],
            ["max_escalation_rate", "[0, 1]"],
        ),  # fmt: skip
        (
            "stages: [{kind: tfidf}, {kind: tfidf}]\n",
            ["--target-accuracy", "0.9", "--max-cost-per-1k", "1"],
            ["give one of"],
        ),  # fmt: skip
        (
            "stages: [{kind: tfidf}, {kind: tfidf}]\nbudget_confidence: 0.95\n",
            ["--target-accuracy", "0.9"],
            ["budget_confidence", "select a budget"],
        ),  # fmt: skip
    ],
)
def test_bad_cascade_configs_fail_in_one_line(
    config: str, options: list[str], fragments: list[str], arxiv_csv: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cascade.yaml"
    path.write_text(config, encoding="utf-8")
    result = train_arxiv(arxiv_csv, tmp_path / "m", "--model", "cascade", "--config", str(path),
                         *options)  # fmt: skip
    assert_user_error(result, *fragments)
    assert not (tmp_path / "m").exists()


def test_a_budget_with_confidence_prints_its_bound(arxiv_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "cascade.yaml"
    config.write_text(CASCADE_YAML.replace("static", "tfidf") + "budget_confidence: 0.9\n")
    out = tmp_path / "model"
    result = train_arxiv(arxiv_csv, out, "--model", "cascade", "--config", str(config),
                         "--valid-split", "0.25")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "with 90% confidence: at most" in result.stdout
    bound = json.loads((out / "cascade.json").read_text())["selection"]["bound"]
    assert bound["confidence"] == 0.9 and bound["escalated_to_last"] <= 0.5


def test_target_options_need_a_cascade(arxiv_csv: Path, tmp_path: Path) -> None:
    result = train_arxiv(arxiv_csv, tmp_path / "m", "--target-accuracy", "0.9")
    assert_user_error(result, "--target-accuracy", "--model cascade")


def test_compare_puts_the_cascade_on_the_cost_frontier_plot(
    cascade_dir: Path, trained_model_dir: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cmp"
    result = run_cli("compare", str(cascade_dir), str(trained_model_dir), "--data",
                     str(arxiv_csv), "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["kind"] for r in rows] == ["cascade", "tfidf"]
    assert rows[0]["cost_per_1k"] > 0 and len(rows[0]["stages"]) == 2
    assert (out / "accuracy_vs_cost.png").stat().st_size > 0
    assert "accuracy_vs_cost.png" in (out / "comparison.md").read_text()
