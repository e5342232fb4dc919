"""``docsort feedback export``: feedback sent to a real service (TestClient over the app, its
store on SQLite and PostgreSQL) becomes a training file that ``docsort train`` reads as it is,
and a model trained on it gets the corrected rows right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import docsort
from docsort.api.feedback import FeedbackExportRequest, feedback_rows, run_feedback_export
from docsort.errors import DocsortError
from docsort.serve import create_app
from tests.conftest import ARXIV_8CAT

LABELS = sorted(pd.read_csv(ARXIV_8CAT).category.unique())


def held_out_texts(n_per_label: int = 2) -> pd.DataFrame:
    """Real arXiv abstracts the shared tfidf model did not train on (it took the first 30)."""
    frame = pd.read_csv(ARXIV_8CAT)
    rows = frame.groupby("category", group_keys=False).nth(list(range(30, 30 + n_per_label)))
    return rows.reset_index(drop=True)


def classify(client: TestClient, texts: list) -> list[dict]:
    key = "texts" if isinstance(texts[0], str) else "records"
    answer = client.post("/v1/classify", json={key: texts})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def send(client: TestClient, **body) -> int:
    answer = client.post("/v1/feedback", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def fill_store(model_dir: Path, store: str) -> dict:
    """A store as a service leaves it: corrections of fully logged predictions, a confirmation
    by rating, a rating without a label, a correction replaced by a later one, feedback with
    its own text, and predictions logged while the server ran with --log-text hash."""
    texts = held_out_texts()
    wrong = {}  # text -> the label it is corrected to: the next label round, never its own
    with TestClient(create_app(model_dir, store, log_text="full")) as client:
        predictions = classify(client, list(texts.abstract))
        for text, category, prediction in zip(texts.abstract, texts.category, predictions,
                                              strict=True):  # fmt: skip
            wrong[text] = LABELS[(LABELS.index(category) + 1) % len(LABELS)]
            send(client, prediction_id=prediction["id"], label=wrong[text], rating=2)
        first = predictions[0]["id"]
        send(client, prediction_id=first, label=LABELS[0], rating=1)  # replaced below
        send(client, prediction_id=first, label=wrong[texts.abstract[0]], rating=5)
        (confirmed,) = classify(client, ["Spectra of quasars seen by a radio telescope."])
        send(client, prediction_id=confirmed["id"], rating=5)
        (unlabelled,) = classify(client, ["A short note."])
        send(client, prediction_id=unlabelled["id"], rating=2)
        own = send(client, text="Lattice QCD on a quantum computer.", label="econ.EM", rating=4)
    with TestClient(create_app(model_dir, store, log_text="hash")) as client:
        hashed = [send(client, prediction_id=p["id"], label="q-bio")
                  for p in classify(client, ["Protein folding.", "Gene expression."])]  # fmt: skip
    return {"wrong": wrong, "confirmed": confirmed, "own": own, "hashed": hashed}


def test_export_keeps_corrections_and_counts_what_it_skips(
    trained_model_dir: Path, each_store: str, tmp_path: Path
) -> None:
    sent = fill_store(trained_model_dir, each_store)
    result = run_feedback_export(FeedbackExportRequest(each_store, tmp_path / "train.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert list(rows[0]) == ["text", "label", "weight", "prediction_id", "model_version"]
    by_text = {r["text"]: r for r in rows}
    assert len(rows) == len(sent["wrong"]) + 2  # the confirmation and the feedback's own text
    assert all(by_text[t]["label"] == label for t, label in sent["wrong"].items())
    first = next(iter(sent["wrong"]))
    assert by_text[first]["weight"] == 1.0  # the later correction (rated 5) replaced the first
    assert {by_text[t]["weight"] for t in list(sent["wrong"])[1:]} == {0.4}
    confirmed = by_text["Spectra of quasars seen by a radio telescope."]
    assert confirmed["label"] == sent["confirmed"]["label"]
    assert confirmed["prediction_id"] == sent["confirmed"]["id"]
    assert len(confirmed["model_version"]) == 12
    own = by_text["Lattice QCD on a quantum computer."]
    assert (own["label"], own["weight"], own["prediction_id"]) == ("econ.EM", 0.8, None)

    skipped = result.data.skipped
    assert skipped["whose text was not stored (--log-text hash)"] == sent["hashed"]
    assert len(skipped["without a label (no correction and no rating of 4+)"]) == 1
    assert len(skipped["replaced by later feedback on the same prediction"]) == 2
    line = result.summary()
    assert "\n" not in line and "skipped 5: " in line and "--log-text hash" in line

    best = feedback_rows(each_store, min_rating=4)  # the confirmation, the own text, the 5
    assert sorted(r["weight"] for r in best.rows) == [0.8, 1.0, 1.0]


def test_docsort_train_reads_the_export_and_learns_the_corrections(
    trained_model_dir: Path, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    sent = fill_store(trained_model_dir, store_url)
    out = tmp_path / "feedback.csv"
    code, err, _ = run_main(monkeypatch, capsys, "feedback", "export", "--store", store_url,
                         "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert err.startswith(f"wrote {len(sent['wrong']) + 2} rows to {out}")
    code, err, _ = run_main(monkeypatch, capsys, "train", str(out), "--out", str(tmp_path / "m"))
    assert code == 0, err  # read as it is: text and label are train's default columns
    model = docsort.load(tmp_path / "m")
    wrong = sent["wrong"]
    got = [row["label"] for row in docsort.predict(model, list(wrong))]
    right = sum(g == w for g, w in zip(got, wrong.values(), strict=True))
    assert right >= 0.9 * len(wrong), (right, len(wrong))


def test_records_come_back_as_their_columns(
    trained_model_dir: Path, store_url: str, tmp_path: Path
) -> None:
    record = {"title": "Dark halos", "abstract": "We observe the galaxy cluster."}
    with TestClient(create_app(trained_model_dir, store_url, log_text="full")) as client:
        (prediction,) = classify(client, [record])
        send(client, prediction_id=prediction["id"], label="q-bio")
    run_feedback_export(FeedbackExportRequest(store_url, tmp_path / "records.csv"))
    frame = pd.read_csv(tmp_path / "records.csv")
    assert list(frame.columns) == ["title", "abstract", "label", "weight", "prediction_id",
                                   "model_version"]  # fmt: skip
    assert frame.iloc[0][["title", "abstract", "label"]].tolist() == [*record.values(), "q-bio"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_multi_label_corrections_are_read_back_as_label_sets(
    store_url: str, tmp_path: Path, suffix: str
) -> None:
    from docsort.api import Columns, read_rows
    from docsort.serve.store import Store

    store = Store(store_url, log_text="full")
    rows = [{"labels": ["cs.CL"], "confidence": 0.7, "probabilities": {"cs.CL": 0.7}}] * 2
    first, second = store.add_predictions(["speech and vision", "parsing"], rows, ("m", "v"), 1.0)
    store.add_feedback(None, prediction_id=first, labels=["cs.CL", "cs.CV"], rating=3)
    store.add_feedback(None, prediction_id=second, rating=5)  # confirms ["cs.CL"]
    out = tmp_path / f"multi{suffix}"
    run_feedback_export(FeedbackExportRequest(store_url, out))
    data = read_rows(str(out), Columns.parse("text"))
    assert [tuple(label) for label in data.labels] == [("cs.CL", "cs.CV"), ("cs.CL",)]


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str):
    """``docsort ARGS`` in this process (its imports are paid once): exit code and stderr."""
    import docsort.cli
    from docsort.cli import main

    monkeypatch.setattr(docsort.cli, "install_termination_handler", lambda: None)  # not here
    monkeypatch.setattr(sys, "argv", ["docsort", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    captured = capsys.readouterr()
    return stopped.value.code, captured.err, captured.out


@pytest.mark.parametrize(
    ("store", "out", "options", "expected"),
    [
        ("sqlite:///{tmp}/gone.sqlite", "t.csv", [], "no store at '{tmp}/gone.sqlite'"),
        ("not a url", "t.csv", [], "'not a url' is not a database URL"),
        ("postgresql://u:secret@127.0.0.1:1/x", "t.csv", [], "cannot be opened: "),
        ("{empty}", "t.csv", [], "the store holds no feedback yet: nothing written"),
        (
            "{hashed}",
            "t.csv",
            [],
            "no feedback row can be a training row, skipped 1: 1 whose "
            "text was not stored (--log-text hash",
        ),
        ("{empty}", "t.parquet", [], "--out '{tmp}/t.parquet' must end in .csv or .jsonl"),
        ("{empty}", "t.csv", ["--min-rating", "6"], "--min-rating must be between 1 and 5"),
    ],
)
def test_export_errors_are_one_line(
    made_stores: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture, store: str, out: str, options: list[str], expected: str,
) -> None:  # fmt: skip
    url = store.format(tmp=tmp_path, **made_stores)
    code, err, _ = run_main(monkeypatch, capsys, "feedback", "export", "--store", url, "--out",
                         str(tmp_path / out), *options)  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert expected.format(tmp=tmp_path) in err, err
    assert "secret" not in err
    assert not (tmp_path / out).exists()


@pytest.fixture(scope="module")
def made_stores(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store without feedback, and one whose only feedback has no stored text."""
    folder = tmp_path_factory.mktemp("stores")
    empty, hashed = f"sqlite:///{folder}/empty.sqlite", f"sqlite:///{folder}/hashed.sqlite"
    create_app(trained_model_dir, empty).state.service.store.engine.dispose()
    with TestClient(create_app(trained_model_dir, hashed)) as client:
        send(client, prediction_id=classify(client, ["Gene expression."])[0]["id"], label="q-bio")
    return {"empty": empty, "hashed": hashed}


def test_the_api_refuses_a_store_it_would_create(tmp_path: Path) -> None:
    with pytest.raises(DocsortError, match="no store at"):
        feedback_rows(f"sqlite:///{tmp_path}/new.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_help_says_what_is_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, _, out = run_main(monkeypatch, capsys, "feedback", "export", "--help")
    assert code == 0
    shown = " ".join(out.split())
    for words in ("--store", "--out", "--min-rating", "weight is rating / 5", "--log-text hash"):
        assert words in shown, words
