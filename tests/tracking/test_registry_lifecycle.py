"""docsort registry on a real MLflow (SQLite): versions with the model's parameters, metrics,
fingerprint and docsort tags; champion / challenger aliases, rollback to the champion before,
archive; every mistake one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docsort.api.registry import (
    PromoteRequest,
    RegisterRequest,
    registry_list,
    run_archive,
    run_promote,
    run_register,
    run_rollback,
)
from docsort.errors import DocsortError

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


def test_versions_carry_params_metrics_and_tags(
    registry: str, model_dir: Path, report_dir: Path, unique_name: str
) -> None:
    from docsort.tracking.client import session

    result = run_register(
        RegisterRequest(
            model_dir, unique_name, metrics=report_dir, alias="challenger", description="first"
        )
    )
    assert (result.version, result.alias, result.previous) == ("1", "challenger", None)
    metrics = json.loads((report_dir / "metrics.json").read_text())
    manifest = (model_dir / "docsort.yaml").read_text()
    with session() as mlflow_registry:
        client = mlflow_registry.client
        version = client.get_model_version(unique_name, "1")
        run = client.get_run(version.run_id)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert version.tags["docsort.kind"] == "tfidf"
    assert version.tags["docsort.version"] == "0.1.0"
    assert version.tags["docsort.train_fingerprint"] in manifest
    assert run.data.params["kind"] == "tfidf" and run.data.params["word_ngrams"] == "[1, 2]"
    assert run.data.metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.metrics["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert artifacts == {"report/metrics.json", "report/report.md"}
    (row,) = registry_list(unique_name)["versions"]
    assert row["aliases"] == ["challenger"] and row["description"] == "first"
    assert row["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"])


def test_promote_rollback_and_archive(registry: str, model_dir: Path, unique_name: str) -> None:
    name = unique_name
    for _ in range(2):
        run_register(RegisterRequest(model_dir, name))
    assert run_promote(PromoteRequest(name, "1")).previous is None
    run_register(RegisterRequest(model_dir, name, alias="challenger"))  # version 3
    promoted = run_promote(PromoteRequest(name, "challenger"))
    assert (promoted.version, promoted.previous) == ("3", "1")
    assert run_promote(PromoteRequest(name, "2")).previous == "3"
    listed = {row["version"]: row for row in registry_list(name)["versions"]}
    assert listed["2"]["aliases"] == ["champion"]
    assert listed["3"]["aliases"] == []  # a challenger made champion is no longer challenger
    assert listed["3"]["parent"] == "1" and listed["1"]["parent"] is None  # champion then

    assert run_rollback(name) == ("2", "3")  # the champion before, then the one before it
    assert run_rollback(name) == ("3", "1")
    with pytest.raises(DocsortError, match="no earlier champion to roll back to"):
        run_rollback(name)

    assert run_archive(name, "2") == "2"
    with pytest.raises(DocsortError, match="version 2 of .* is archived: register it again"):
        run_promote(PromoteRequest(name, "2"))
    with pytest.raises(DocsortError, match="is the champion: promote another version"):
        run_archive(name, "1")
    assert registry_list(name)["versions"][1]["archived"] is True
    models = {row["name"]: row for row in registry_list()["models"]}
    assert models[name] == {
        "name": name,
        "versions": 3,
        "latest": "3",
        "champion": "1",
        "challenger": None,
    }


def test_mistakes_are_one_line(
    registry: str,
    champion: str,
    model_dir: Path,
    report_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from docsort.api.registry import local_model

    cases = [
        (lambda: local_model("models:/nope@champion"), "no registered model 'nope' in sqlite"),
        (lambda: local_model("models:/arxiv/9"), "arxiv has no version 9 \\(its versions: 1"),
        (
            lambda: local_model("models:/arxiv@challenger"),
            "arxiv has no alias 'challenger' \\(its aliases: champion → 1\\)",
        ),
        (lambda: local_model("models:/arxiv"), "is not a registry reference"),
        (lambda: run_promote(PromoteRequest("arxiv", "champion")), "champion already"),
        (lambda: run_promote(PromoteRequest("arxiv", "1")), "is the champion already"),
        (lambda: run_promote(PromoteRequest("arxiv", "latest")), "a version number or challenger"),
        (
            lambda: run_promote(PromoteRequest("arxiv", "2", tolerance=float("nan"))),
            "--tolerance must be 0 or more",
        ),
        (lambda: run_register(RegisterRequest(model_dir, "a/b")), "without '/'"),
        (
            lambda: run_register(RegisterRequest(model_dir, "x", alias="prod")),
            "--alias is champion or challenger",
        ),
        (lambda: run_register(RegisterRequest(tmp_path, "x")), "is not a docsort model"),
        (
            lambda: run_register(RegisterRequest(model_dir, "x", metrics=tmp_path)),
            "no metrics.json there",
        ),
        (
            lambda: registry_list(tracking_uri=f"sqlite:///{tmp_path}/no/such/dir/m.db"),
            "folder .* does not exist",
        ),
    ]
    for call, message in cases:
        with pytest.raises(DocsortError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)

    other = tmp_path / "metrics.json"  # a report of a model trained on other rows
    report = json.loads((report_dir / "metrics.json").read_text())
    report["model_info"]["train_fingerprint"] = "0" * 16
    other.write_text(json.dumps(report))
    with pytest.raises(DocsortError, match="trained on other rows"):
        run_register(RegisterRequest(model_dir, "x", metrics=other))

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(DocsortError, match="http://127.0.0.1:9 cannot be reached") as caught:
        registry_list(tracking_uri="http://127.0.0.1:9")
    assert "\n" not in str(caught.value)


def test_the_cli_says_a_registry_mistake_in_one_line(
    registry: str,
    champion: str,
    holdout_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from docsort.cli import main

    out = str(tmp_path / "out.jsonl")
    for argv, message in (
        (["predict", "models:/arxiv/7", str(holdout_csv), "--out", out],
         "error: arxiv has no version 7 (its versions: 1"),
        (["eval", "models:/nope@champion", str(holdout_csv), "--out", str(tmp_path / "r")],
         "error: no registered model 'nope' in sqlite:"),
        (["predict", "models:/arxiv@champion", str(holdout_csv), "--out", out, "--text", "x"],
         "error: "),  # a docsort error after the reference opened: still one line
    ):  # fmt: skip
        monkeypatch.setattr("sys.argv", ["docsort", *argv])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err, err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "ftp://x")
    monkeypatch.setattr("sys.argv", ["docsort", "predict", "models:/a/1", "-", "--out", out])
    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().err.startswith("error: ftp://x is not a tracking URI MLflow")
    assert not Path(out).exists()


def test_the_registry_commands_print_what_they_did(
    registry: str, model_dir: Path, report_dir: Path, unique_name: str
) -> None:
    from typer.testing import CliRunner

    from docsort.cli.registry import registry_app

    def run(*args: str) -> str:
        result = CliRunner().invoke(registry_app, list(args), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    name = unique_name
    shown = run("register", str(model_dir), "--name", name, "--metrics", str(report_dir),
                "--alias", "challenger")  # fmt: skip
    assert f"as version 1 of {name}, challenger (was –): models:/{name}/1" in shown
    assert f"{name}: champion is version 1 (was –)" in run("promote", name, "challenger")
    table = run("list", name)
    assert "champion" in table and "accuracy" in table and "tfidf" in table
    listed = json.loads(run("list", name, "--json"))
    assert listed["versions"][0]["aliases"] == ["champion"]
    assert name in run("list")
