"""Drift: a stream from the model's own source stays quiet, a shifted stream (patent abstracts
sent to an arXiv model) moves the confidence and label signals, through the module and
through a real service (``/v1/drift`` and ``/metrics``); a cascade escalating beyond its budget
is logged once."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import docsort
from docsort.errors import DocsortError
from docsort.serve import create_app
from docsort.serve.drift import MIN_ROWS, DriftMonitor, Reference, monitor_for, psi
from tests.conftest import ARXIV_8CAT, PATENT_SECTIONS


def arxiv_rows(start: int, stop: int, seed: int) -> pd.DataFrame:
    """Real arXiv rows start..stop-1 of each category (the shared model trained on 0-29),
    shuffled so that a window is not one category after another."""
    frame = pd.read_csv(ARXIV_8CAT)
    rows = frame.groupby("category", group_keys=False).nth(slice(start, stop))
    return rows.sample(frac=1, random_state=seed).reset_index(drop=True)


def patent_records(n: int) -> list[dict[str, str]]:
    frame = pd.read_csv(PATENT_SECTIONS).sample(n, random_state=0)
    return [{"title": "Patent", "abstract": text} for text in frame.text]


def records(frame: pd.DataFrame) -> list[dict[str, str]]:
    return frame[["title", "abstract"]].to_dict("records")


@pytest.fixture(scope="module")
def reference_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drift") / "reference.csv"
    arxiv_rows(30, 50, seed=0).to_csv(path, index=False)
    return path


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert psi([10, 20, 30], [20, 40, 60]) < 1e-4  # same shares; the 0.5 smoothing differs
    assert psi([50, 50], [45, 55]) < 0.1 < psi([50, 50], [20, 80]) < psi([50, 50], [5, 95])


def test_the_same_source_is_quiet_and_another_drifts(
    trained_model_dir: Path, reference_csv: Path
) -> None:
    model = docsort.load(trained_model_dir)
    same = monitor_for(model, str(reference_csv))
    assert same is not None and same.reference is not None
    assert same.reference.source.endswith("(160 rows)")
    same.observe(docsort.api.run_predict(
        docsort.api.PredictRequest(model, records(arxiv_rows(50, 80, seed=1)))).rows)  # fmt: skip
    quiet = same.report()
    assert quiet["rows"] == 240 and quiet["drifted"] is False
    assert quiet["confidence"]["psi"] < 0.25 and quiet["confidence"]["ks_pvalue"] > 0.01
    assert quiet["labels"]["psi"] < 0.25

    shifted = monitor_for(model, str(reference_csv))
    shifted.observe(docsort.api.run_predict(
        docsort.api.PredictRequest(model, patent_records(240))).rows)  # fmt: skip
    moved = shifted.report()
    assert moved["drifted"] is True
    assert moved["confidence"]["psi"] > 0.25 and moved["confidence"]["ks_pvalue"] < 1e-6
    assert moved["confidence"]["mean"] < moved["confidence"]["reference_mean"]
    assert moved["labels"]["psi"] > quiet["labels"]["psi"]


def test_without_a_reference_the_first_window_is_the_baseline(trained_model_dir: Path) -> None:
    model = docsort.load(trained_model_dir)
    monitor = monitor_for(model, window=100)
    rows = docsort.api.run_predict(
        docsort.api.PredictRequest(model, records(arxiv_rows(30, 60, seed=2)))
    ).rows
    monitor.observe(rows[:60])
    waiting = monitor.report()
    assert waiting["drifted"] is None and waiting["reference"]["rows"] == 60
    monitor.observe(rows[60:])
    report = monitor.report()
    assert report["reference"]["source"] == "the first 100 predictions served"
    assert report["rows"] == 100 and report["drifted"] is not None  # the last 100 of 140


def test_bad_references_are_one_line(trained_model_dir: Path, tmp_path: Path) -> None:
    model = docsort.load(trained_model_dir)
    with pytest.raises(DocsortError, match="--drift-reference .*no such file"):
        monitor_for(model, str(tmp_path / "absent.csv"))
    with pytest.raises(ValueError, match=f"at least {MIN_ROWS}"):
        DriftMonitor(None, window=10)


def test_a_cascade_over_its_escalation_budget_is_logged_once(caplog) -> None:
    reference = Reference(
        confidence=np.linspace(0.2, 1, 200),
        label_shares={"a": 0.5, "b": 0.5},
        stage_shares={"cheap": 0.8, "big": 0.2},
        escalation_budget=0.3,
        escalated_names=("big",),
    )
    monitor = DriftMonitor(reference, window=100)
    easy = [{"label": "a", "confidence": 0.9, "stage": "cheap"}] * 80
    hard = [{"label": "b", "confidence": 0.4, "stage": "big"}] * 60
    with caplog.at_level(logging.WARNING, logger="docsort.serve"):
        monitor.observe(easy)
        monitor.observe(hard[:30])
        monitor.observe(hard[30:])
    warnings = [r for r in caplog.records if "escalated" in r.getMessage()]
    assert len(warnings) == 1 and "more than the 30.0%" in warnings[0].getMessage()
    review = monitor.report()["review"]
    assert review["over_budget"] and review["share"] == pytest.approx(0.6)
    assert monitor.report()["stages"]["psi"] > 0.25


def test_the_service_reports_drift(trained_model_dir: Path, reference_csv: Path) -> None:
    app = create_app(trained_model_dir, drift_reference=str(reference_csv))
    with TestClient(app) as client:
        before = client.get("/v1/drift").json()
        assert before["rows"] == 0 and before["drifted"] is None
        for chunk in np.array_split(np.arange(240), 4):
            body = {"records": [patent_records(240)[i] for i in chunk]}
            assert client.post("/v1/classify", json=body).status_code == 200
        after = client.get("/v1/drift").json()
        assert after["rows"] == 240 and after["drifted"] is True
        metrics = client.get("/metrics").text
        line = next(x for x in metrics.splitlines()
                    if x.startswith('docsort_drift_psi{signal="confidence"}'))  # fmt: skip
        assert float(line.split()[-1]) == pytest.approx(after["confidence"]["psi"])
        assert "docsort_drift_ks_pvalue " in metrics
        assert "docsort_drift_window_rows 240.0" in metrics
