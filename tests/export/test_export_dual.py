"""docsort export of a ``dual`` model: the shared encoder is the graph, the label vectors are
stored beside it, and a label added at predict time is read from its description by the same
graph, scoring as the PyTorch dual model scores it (without torch: test_export.py). Small real
models: a zero-shot dual over arXiv titles (default run) and a few-shot trained one whose label
vectors lean on prototypes (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import docsort
from docsort.api import predict
from docsort.api.export import ExportRequest, run_export
from docsort.api.rows import read_labels
from docsort.data.labels import LabelSet
from tests.export.conftest import DUAL_ADDED, train_dual
from tests.models.test_dual import ARXIV

# measured: max |Δp| 1.1e-6 (zero-shot, titles) and 1.7e-6 (trained, title + abstract) between
# the ONNX and the PyTorch dual model on the 56 check rows, with or without the added label
TOLERANCE = 1e-5


def _checked(report: dict) -> dict:
    assert report["passed"] and report["source_kind"] == "dual", report
    checked = report["check"]
    assert checked["rows"] == 56 and checked["label_agreement"] >= 0.995, checked
    assert checked["max_abs_dp"] <= TOLERANCE, checked
    return checked


def test_an_exported_dual_keeps_its_label_vectors_and_reads_new_labels(dual_onnx) -> None:
    out, report = dual_onnx
    print("zero-shot dual", json.dumps(_checked(report)))
    saved = json.loads((out / "export.json").read_text())
    assert saved["check"] == report["check"] and "normalisation" in saved["graph"]
    assert {"model.onnx", "tokenizer.json", "label_vectors.npy", "dual.json"} <= {
        p.name for p in out.iterdir()
    }
    model = docsort.load(out)
    assert model.kind == "onnx_dual" and model.capabilities().scores_new_labels
    assert sorted(model.labels_.names) == sorted(set(ARXIV) - {DUAL_ADDED})
    wider = model.with_labels(LabelSet(tuple(ARXIV), ARXIV))  # the API's labels=, as REST gives
    assert wider.label_vectors_.shape == (8, 384) and model.label_vectors_.shape == (7, 384)
    known = [wider.labels_.index(n) for n in model.labels_.names]
    assert np.abs(wider.label_vectors_[known] - model.label_vectors_).max() < 1e-5


def _probabilities(model, texts: list[str], labels: Path) -> tuple[np.ndarray, list[str]]:
    rows = predict(model, texts, labels=read_labels(labels))
    names = list(rows[0]["probabilities"])
    return np.array([[row["probabilities"][n] for n in names] for row in rows]), names


@pytest.mark.slow  # 170 s at load 7: a real few-shot training run (prototypes leaned in)
def test_a_trained_dual_exports_and_scores_a_label_added_at_predict_time(
    dual_rows, tmp_path
) -> None:
    params = {"max_length": 64, "label_max_length": 32, "epochs": 1, "batch_size": 16,
              "lr": 1e-4, "step_labels": 4}  # fmt: skip
    source, trained = train_dual(dual_rows, tmp_path / "dual", "title,abstract", params)
    assert trained.prototypes_ is not None  # few-shot: the label vectors lean on prototypes
    out = tmp_path / "onnx"
    request = ExportRequest(model=str(source), out=str(out), check=str(dual_rows["check"]))
    print("trained dual", json.dumps(_checked(run_export(request).report)))
    assert (out / "prototypes.npy").is_file()
    frame = pd.read_csv(dual_rows["check"])
    texts = (frame.title + "\n" + frame.abstract).tolist()  # as the trained columns join them
    torch_p, names = _probabilities(trained, texts, dual_rows["labels"])
    onnx_p, onnx_names = _probabilities(str(out), texts, dual_rows["labels"])
    assert names == onnx_names and DUAL_ADDED in names and len(names) == 8
    delta = float(np.abs(torch_p - onnx_p).max())
    picked = np.array(names)[onnx_p.argmax(1)]
    added = frame.category.to_numpy() == DUAL_ADDED
    print("added label: max |dp|", delta, "astro-ph rows given astro-ph",
          int((picked[added] == DUAL_ADDED).sum()), "of", int(added.sum()))  # fmt: skip
    assert delta <= TOLERANCE and (torch_p.argmax(1) == onnx_p.argmax(1)).all()
    assert (picked[added] == DUAL_ADDED).mean() >= 0.5  # the added label is really read
    # below --min-agreement nothing is written
    refused = run_export(
        ExportRequest(model=str(source), out=str(tmp_path / "no"), check=str(dual_rows["check"]),
                      min_agreement=1.01)
    )  # fmt: skip
    assert not refused.written and not (tmp_path / "no").exists()
