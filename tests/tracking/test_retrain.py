"""docsort retrain NAME --with-feedback: corrections people sent to the service serving the
champion make the next version, which gets the corrected rows right, is registered as
challenger, and is promoted only through the gate (which refuses a deliberately worse one)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import docsort
from docsort.api.registry import RegisterRequest, registry_list, run_register
from docsort.api.retrain import RetrainRequest, run_retrain
from docsort.errors import DocsortError
from tests.conftest import ARXIV_8CAT, run_cli

pytest.importorskip("fastapi")
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")

LABELS = sorted(pd.read_csv(ARXIV_8CAT).category.unique())


def unseen_rows() -> pd.DataFrame:
    """Real arXiv rows neither the champion (rows 0-29) nor the holdout (30-49) holds."""
    frame = pd.read_csv(ARXIV_8CAT)
    return frame.groupby("category", group_keys=False).nth(slice(50, 60)).reset_index(drop=True)


def send_feedback(champion: str, store: str, rows: pd.DataFrame, label_of) -> int:
    """Classify ``rows`` through a real service serving ``champion`` and send, for each
    row ``label_of`` gives a label for, that label as the correction. Returns how many."""
    from fastapi.testclient import TestClient

    from docsort.serve import create_app

    records = rows[["title", "abstract"]].to_dict("records")
    sent = 0
    with TestClient(create_app(champion, store, log_text="full")) as client:
        answer = client.post("/v1/classify", json={"records": records})
        assert answer.status_code == 200, answer.text
        for prediction, (_, row) in zip(answer.json()["predictions"], rows.iterrows(), strict=True):
            label = label_of(prediction["label"], row.category)
            if label is None:
                continue
            body = {"prediction_id": prediction["id"], "label": label, "rating": 1}
            assert client.post("/v1/feedback", json=body).status_code == 201
            sent += 1
    return sent


def test_retrain_learns_the_corrections_and_passes_the_gate(
    registry: str, model_dir: Path, holdout_csv: Path, unique_name: str, tmp_path: Path
) -> None:
    name, store = unique_name, f"sqlite:///{tmp_path / 'store.sqlite'}"
    run_register(RegisterRequest(model_dir, name, alias="champion"))
    # correct only what the champion got wrong: its true category
    sent = send_feedback(
        f"models:/{name}@champion",
        store,
        unseen_rows(),
        lambda predicted, truth: truth if predicted != truth else None,
    )
    assert sent >= 5  # a handful at least (the champion reads 30 rows a label)

    result = run_retrain(
        RetrainRequest(name, tmp_path / "v2", store=store, holdout=holdout_csv, promote=True)
    )
    assert result.feedback_rows == sent and result.training_rows == 240
    assert result.corrected is not None and result.corrected.champion == 0
    assert result.corrected.challenger >= 0.9 * sent
    assert result.promoted is not None and result.promoted.version == result.version == "2"
    assert result.promoted.gate is not None and result.promoted.gate["passed"]
    versions = {v["version"]: v for v in registry_list(name)["versions"]}
    assert "champion" in versions["2"]["aliases"]
    # the new version reads what the champion read (title and abstract) and is a model dir
    row = unseen_rows().iloc[0]
    assert docsort.load(tmp_path / "v2").predict([f"{row.title}"])  # loads and predicts


def test_the_gate_refuses_a_retrain_on_wrong_feedback(
    registry: str, model_dir: Path, holdout_csv: Path, unique_name: str, tmp_path: Path
) -> None:
    name, store = unique_name, f"sqlite:///{tmp_path / 'store.sqlite'}"
    run_register(RegisterRequest(model_dir, name, alias="champion"))
    # deliberately wrong corrections: every row "corrected" to the next category round
    send_feedback(
        f"models:/{name}@champion",
        store,
        unseen_rows(),
        lambda predicted, truth: LABELS[(LABELS.index(truth) + 1) % len(LABELS)],
    )
    request = RetrainRequest(
        name, tmp_path / "v2", store=store, feedback_repeat=5, holdout=holdout_csv, promote=True
    )
    with pytest.raises(DocsortError) as refused:
        run_retrain(request)
    message = str(refused.value)
    assert message.startswith(f"version 2 of {name} is registered as challenger, not promoted: ")
    assert "refused:" in message and "worse than the champion (version 1" in message
    versions = {v["version"]: v for v in registry_list(name)["versions"]}
    assert versions["2"]["aliases"] == ["challenger"] and "champion" in versions["1"]["aliases"]


def test_retrain_refuses_what_it_cannot_use(
    registry: str, model_dir: Path, unique_name: str, tmp_path: Path
) -> None:
    name = unique_name
    with pytest.raises(DocsortError, match=r"^no registered model .m-"):
        run_retrain(RetrainRequest(name, tmp_path / "v2"))
    run_register(RegisterRequest(model_dir, name, alias="champion"))
    store = f"sqlite:///{tmp_path / 'absent.sqlite'}"
    with pytest.raises(DocsortError) as absent:
        run_retrain(RetrainRequest(name, tmp_path / "v2", store=store))
    assert "absent.sqlite" in str(absent.value) and "\n" not in str(absent.value)
    for repeat in (0, 101, 2.5):
        with pytest.raises(DocsortError, match="^--feedback-repeat must be a whole number"):
            run_retrain(RetrainRequest(name, tmp_path / "v2", feedback_repeat=repeat))
    with pytest.raises(DocsortError, match="^--promote compares the challenger"):
        run_retrain(RetrainRequest(name, tmp_path / "v2", promote=True))
    assert not (tmp_path / "v2").exists()
    assert [v["version"] for v in registry_list(name)["versions"]] == ["1"]


def test_retrain_from_the_command_line(
    registry: str, model_dir: Path, unique_name: str, tmp_path: Path
) -> None:
    name, store = unique_name, f"sqlite:///{tmp_path / 'store.sqlite'}"
    run_register(RegisterRequest(model_dir, name, alias="champion"))
    no_store = run_cli("retrain", name, "--with-feedback", "--out", str(tmp_path / "v2"))
    assert no_store.returncode == 2
    assert no_store.stderr.strip() == (
        "error: --with-feedback reads the feedback from --store URL: give it"
    )
    send_feedback(
        f"models:/{name}@champion",
        store,
        unseen_rows().head(8),
        lambda predicted, truth: truth,
    )
    from typer.testing import CliRunner

    from docsort.cli import app

    # in-process: a second python importing MLflow costs more than the retraining itself;
    # --tracking-uri wins over $MLFLOW_TRACKING_URI (pointed at an empty registry here)
    argv = ["retrain", name, "--with-feedback", "--store", store, "--out", str(tmp_path / "v2"),
            "--tracking-uri", registry]  # fmt: skip
    env = {"DOCSORT_NO_PROGRESS": "1", "COLUMNS": "200",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'other.db'}"}  # fmt: skip
    done = CliRunner().invoke(app, argv, env=env)
    assert done.exit_code == 0, done.output
    assert "trained on 240 training rows and 8 feedback rows" in done.stdout
    assert "corrected rows right: champion " in done.stdout
    assert f"registered as version 2 of {name} (challenger" in done.stdout


def test_retrain_writes_augmented_rows_as_the_champion_did(
    registry: str, arxiv_frame: pd.DataFrame, marian: Path, unique_name: str, tmp_path: Path
) -> None:
    from docsort import api

    data = tmp_path / "rows.csv"
    arxiv_frame.groupby("category").head(10).to_csv(data, index=False)
    spec = {"method": "backtranslate", "translator": str(marian), "classes": ["cs.CL"],
            "back_translator": str(marian), "n": 1, "filter": False, "max_tokens": 12}  # fmt: skip
    request = api.TrainRequest(
        data=data,
        out=tmp_path / "v1",
        params={"char_ngrams": None, "augment": spec},
        columns=api.Columns.parse("title,abstract", label="category"),
    )
    api.fit(api.prepare_train(request))
    run_register(RegisterRequest(tmp_path / "v1", unique_name, alias="champion"))
    result = run_retrain(RetrainRequest(unique_name, tmp_path / "v2"))
    again = docsort.load(tmp_path / "v2").trained_on_["augment"]
    first = docsort.load(tmp_path / "v1").trained_on_["augment"]
    assert again == first and again["sources"] == 10 and again["max_tokens"] == 12
    assert any("augmentation repeated" in note for note in result.notes)
