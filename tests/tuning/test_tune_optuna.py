"""docsort tune with Optuna on tfidf (no epochs: one report per trial): a real search on real
arXiv rows, its files, its best model, a search killed and resumed, and the errors of bad input.

tfidf on words only (no character n-grams) trains on 240 rows in a fraction of a second, so a
search of several trials costs a few seconds."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import docsort
from docsort.api.tuning import TuneRequest, prepare_tune, run_tune
from docsort.errors import DocsortError
from tests.conftest import run_cli

FAST = "char_ngrams: null\nmin_df: 1\nclassifier: logreg\nmax_iter: 100\n"
SPACE = (
    "C: {type: float, low: 0.05, high: 5, log: true}\n"
    "class_weight: {type: categorical, choices: [balanced, null]}\n"
)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "fast.yaml").write_text(FAST)
    return {"space": tmp_path / "space.yaml", "config": tmp_path / "fast.yaml"}


def request(arxiv_csv: Path, files: dict[str, Path], out: Path, **kw) -> TuneRequest:
    columns = docsort.api.Columns.parse("title,abstract", label="category")
    args = {"trials": 4, "config": files["config"], **kw}
    return TuneRequest(data=str(arxiv_csv), space=files["space"], out=out, columns=columns, **args)


def read_trials(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_search_saves_the_best_trial_as_a_model_and_every_trial_in_a_table(
    arxiv_csv: Path, arxiv_frame, files, tmp_path: Path
) -> None:
    out = tmp_path / "search"
    result = run_tune(prepare_tune(request(arxiv_csv, files, out)), say=lambda line: None)
    rows = read_trials(out)
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["state"] for r in rows} == {"complete"}
    assert all(0.05 <= float(r["C"]) <= 5 and float(r["seconds"]) > 0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    best = max(rows, key=lambda r: float(r["value"]))
    assert summary["best"]["value"] == pytest.approx(float(best["value"]), abs=1e-6)
    assert summary["best"]["params"]["C"] == pytest.approx(float(best["C"]))
    assert (out / "search.png").stat().st_size > 10_000
    # the best model is a normal model dir: it loads, predicts and evaluates, with its params
    model = docsort.load(out / "model")
    assert pytest.approx(summary["best"]["params"]["C"]) == model.C
    assert model.char_ngrams is None  # the config's fixed parameters are kept
    data = docsort.from_frame(arxiv_frame, text=["title", "abstract"], label="category")
    metrics = docsort.evaluate(model, data)
    assert metrics["macro_f1"] > 0.5
    assert result.best is not None and result.best.value == summary["best"]["value"]


def test_a_killed_search_resumes_from_its_storage(arxiv_csv: Path, files, tmp_path: Path) -> None:
    out, db = tmp_path / "search", tmp_path / "study.db"
    args = [
        "tune", str(arxiv_csv), "--text", "title,abstract", "--label", "category",
        "--space", str(files["space"]), "--config", str(files["config"]),
        "--trials", "5", "--storage", f"sqlite:///{db}", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "DOCSORT_NO_PROGRESS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "docsort.cli", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    complete = 0
    deadline = time.monotonic() + 120
    while complete < 2 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
        complete = _complete(db)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 2 <= complete < 5, "the search ended before it could be killed"
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    rows = read_trials(out)
    assert sum(r["state"] == "complete" for r in rows) == 5  # the count adds up
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_with"] >= 2
    assert all(r["state"] in ("complete", "killed") for r in rows)
    assert docsort.load(out / "model").predict(["a galaxy survey of quasars"])


def _complete(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=0.1) as conn:
            query = "select count(*) from trials where state = 'COMPLETE'"
            return conn.execute(query).fetchone()[0]
    except sqlite3.Error:  # the tables are not made yet, or the writer holds the lock
        return 0


@pytest.mark.parametrize(
    ("space", "config", "message"),
    [
        (None, None, "space file not found"),
        ("C: [1, 2\n", None, "not valid YAML"),
        ("- C\n", None, "must map parameter names to ranges"),
        ("Cee: {type: float, low: 1, high: 2}\n", None, "has no parameter 'Cee'"),
        ("C: {type: float, low: 2, high: 1}\n", None, "needs low < high"),
        ("C: {type: float, low: 0, high: 1, log: true}\n", None, "log scale needs low > 0"),
        ("C: {type: float, low: -1, high: 1}\n", None, "tfidf C must be"),
        ("min_df: {type: float, low: 1, high: 5}\n", None, "(use type: int)"),
        ("C: {type: number, low: 1, high: 2}\n", None, "type must be one of"),
        ("C: {type: float, lo: 1, high: 2}\n", None, "not 'lo'"),
        ("classifier: {type: categorical, choices: [svm, forest]}\n", None, "'forest'"),
        ("C: {type: float, low: 0.1, high: 1}\n", "nope: 1\n", "has no parameter 'nope'"),
    ],
)
def test_a_bad_space_is_one_line_before_any_trial(
    arxiv_csv: Path, files, tmp_path: Path, space, config, message
) -> None:
    path = tmp_path / "bad.yaml"
    if space is not None:
        path.write_text(space)
    if config is not None:
        files["config"].write_text(config)
    with pytest.raises(DocsortError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_tune(request(arxiv_csv, {**files, "space": path}, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metric": "f1_macro"}, "--metric 'f1_macro' is not a metric"),
        ({"scheduler": "pbt"}, "use it with --backend ray"),
        ({"backend": "ray", "scheduler": "pbt"}, "tfidf has no training loop checkpoint"),
        ({"backend": "ray", "scheduler": "hyperband"}, "--scheduler must be one of"),
        ({"backend": "ray", "storage": "sqlite:///x.db"}, "--storage is Optuna's"),
        ({"backend": "grid"}, "--backend must be one of"),
        ({"trials": 0}, "--trials must be"),
        ({"time_budget": -5}, "--time-budget must be"),
    ],
)
def test_bad_options_are_one_line(arxiv_csv: Path, files, tmp_path: Path, options, message) -> None:
    with pytest.raises(DocsortError, match=message):
        prepare_tune(request(arxiv_csv, files, tmp_path / "out", **options))


def test_out_must_be_new_empty_or_an_earlier_search(arxiv_csv: Path, files, tmp_path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DocsortError, match="holds other files"):
        prepare_tune(request(arxiv_csv, files, tmp_path / "other"))


def test_the_cli_says_what_is_wrong_in_one_line_and_exits_2(arxiv_csv: Path, tmp_path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("lr: {type: float, low: 1.0e-5, high: 1.0e-3}\n")
    result = run_cli("tune", str(arxiv_csv), "--text", "title,abstract", "--label", "category",
                     "--space", str(bad), "--out", str(tmp_path / "o"))  # fmt: skip
    assert result.returncode == 2
    assert "kind 'tfidf' has no parameter 'lr'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
