"""docsort export of composites: a cascade (tfidf → embed) and an ensemble (tfidf + embed) export
the member that can be exported (embed → onnx) and keep tfidf as it is, saved again inside; the
exported cascade routes exactly as its source (the same stage answers every check row)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import docsort
from docsort.api import Columns, TrainRequest, fit, prepare_train
from docsort.api.export import ExportRequest, run_export
from tests.export.test_export import without_torch

COLUMNS = Columns.parse("title,abstract", label="category")


@pytest.mark.slow  # 65-75 s each at load 6 (+30 s to train the embed probe and tfidf)
@pytest.mark.parametrize("kind", ["cascade", "ensemble"])
def test_a_composite_exports_its_exportable_members(
    kind, trained_model_dir, embed_dir, arxiv_csv, check_csv, tmp_path
) -> None:
    texts = pd.read_csv(check_csv).pipe(lambda f: f.title + "\n" + f.abstract).tolist()
    if kind == "cascade":
        # tfidf answers the check rows it is surer of than its median, embed the rest
        threshold = float(np.median(docsort.load(trained_model_dir).predict_proba(texts).max(1)))
        params = {"stages": [{"model": str(trained_model_dir), "threshold": threshold},
                             {"model": str(embed_dir)}]}  # fmt: skip
    else:
        params = {"members": [str(trained_model_dir), str(embed_dir)]}
    source = tmp_path / kind
    request = TrainRequest(data=str(arxiv_csv), kind=kind, params=params, columns=COLUMNS,
                           out=str(source))  # fmt: skip
    fit(prepare_train(request))
    out = tmp_path / "onnx"
    result = run_export(ExportRequest(model=str(source), out=str(out), check=str(check_csv)))
    report, checked = result.report, result.report["check"]
    print(kind, json.dumps(checked), json.dumps(report["parts"]))
    assert result.written and report["passed"]
    assert [(p["kind"], p["exported"]) for p in report["parts"]] == [
        ("tfidf", None),
        ("embed", "onnx"),
    ]
    assert checked["label_agreement"] >= 0.995 and checked["max_abs_dp"] <= 1e-4, checked
    exported, original = docsort.load(out), docsort.load(source)
    assert exported.kind == kind
    assert [p.kind for p in exported.parts()] == ["tfidf", "onnx"]
    assert exported.predict(texts) == original.predict(texts)
    # and without torch: tfidf as it was, embed through ONNX Runtime
    (labels,) = without_torch([[out, texts[:20], None]])
    assert labels == original.predict(texts[:20])
    if kind == "cascade":
        assert checked["stage_agreement"] == 1.0, checked
        counts = checked["stages"]
        assert counts["source"] == counts["onnx"] and all(counts["source"].values()), counts
        assert (exported.route(texts).stage == original.route(texts).stage).all()
