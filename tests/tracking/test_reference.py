"""A registry reference works wherever a model directory does: ``docsort predict`` (the same
bytes as by directory), ``eval``, ``compare``, ``serve``; the version is downloaded once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from docsort import api
from docsort.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


def test_predict_by_reference_writes_the_rows_predict_by_dir_writes(
    registry: str, champion: str, model_dir: Path, holdout_csv: Path, tmp_path: Path
) -> None:
    # the CLI in this process: a child's interpreter would import MLflow again (seconds)
    outputs = {}
    for model in (str(model_dir), champion):
        out = tmp_path / f"{len(outputs)}.jsonl"
        result = CliRunner().invoke(app, ["predict", model, str(holdout_csv), "--out", str(out)])
        assert result.exit_code == 0, result.output
        outputs[model] = out.read_text(encoding="utf-8")
    assert outputs[champion] == outputs[str(model_dir)]
    assert len(outputs[champion].splitlines()) == 160
    assert "Downloading" not in result.output

    report = tmp_path / "report"  # eval's MODEL argument is typed as a path: still a reference
    result = CliRunner().invoke(app, ["eval", champion, str(holdout_csv), "--out", str(report)])
    assert result.exit_code == 0, result.output
    assert (report / "metrics.json").is_file()


def test_eval_compare_and_serve_open_a_reference_as_its_directory(
    registry: str, champion: str, model_dir: Path, holdout_csv: Path
) -> None:
    by_dir = api.run_evaluate(api.EvalRequest(model=model_dir, data=holdout_csv))
    by_ref = api.run_evaluate(api.EvalRequest(model=champion, data=holdout_csv))
    for key in ("accuracy", "macro_f1", "ece"):
        assert by_ref.metrics[key] == by_dir.metrics[key]
    rows = api.run_compare(api.CompareRequest(models=[champion, model_dir], data=holdout_csv))
    assert [row["model"] for row in rows] == ["arxiv@champion", "words"]
    assert rows[0]["accuracy"] == rows[1]["accuracy"] == by_dir.metrics["accuracy"]

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from docsort.serve import create_app

    texts = ["A convolutional network for image segmentation", "Lattice cryptography"]
    expected = api.run_predict(api.PredictRequest(model=model_dir, data=texts)).rows
    with TestClient(create_app(champion)) as client:
        answer = client.post("/v1/classify", json={"texts": texts})
    assert answer.status_code == 200, answer.text
    got = [
        {k: p[k] for k in ("label", "confidence", "probabilities")}
        for p in answer.json()["predictions"]
    ]
    assert got == expected


def test_a_version_is_downloaded_once(registry: str, champion: str) -> None:
    from docsort.api.registry import local_model, resolve_reference

    resolved = resolve_reference(champion)
    assert (resolved.name, resolved.version) == ("arxiv", "1")
    first = local_model(champion)
    assert first == resolved.path
    files = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    again = local_model("models:/arxiv/1")  # the same version by number
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*") if p.is_file()} == files
    assert (first / "docsort.yaml").is_file()
