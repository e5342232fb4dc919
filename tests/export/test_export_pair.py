"""docsort export of ``pair`` models (cross- and bi-encoder) on real USPTO phrase pairs: the
scores through ONNX correlate with the source's at r >= 0.995 (export.json's ``pearson_r``, the
refusal bound), the task Pearson r of both models on the labelled check rows stays within 0.005
(issue 19's acceptance), and the exported model scores without torch. Slow: each trains a tiny
pair model (42 rows, 32 tokens, 2 epochs: 40-100 s on this loaded 2-core machine)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import docsort
from docsort.api import Columns, TrainRequest, fit, predict, prepare_train
from docsort.api.export import ExportRequest, run_export
from docsort.api.rows import read_rows
from docsort.errors import DocsortError
from docsort.models import create
from docsort.models.kinds.pair import context_title
from tests.conftest import USPTO_P2P, USPTO_TITLES
from tests.export.test_export import without_torch

COLUMNS = Columns.parse("anchor", label="score", pair="target", context="context")
# measured: r = 1 - 2e-13, max |Δscore| 1e-7 (cross, mse) and 3e-7 (bi, ordinal)
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def pair_rows(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Training pairs of 10 anchors (one target per score level, 42 rows) and check pairs of
    20 other anchors (94 rows), with their scores; the check rows without scores too."""
    folder = tmp_path_factory.mktemp("pair-rows")
    frame = pd.read_csv(USPTO_P2P)
    anchors = frame.anchor.drop_duplicates()
    train = frame[frame.anchor.isin(anchors.head(10))].groupby(["anchor", "score"]).head(1)
    check = frame[frame.anchor.isin(anchors.iloc[10:30])].groupby(["anchor", "score"]).head(1)
    train.to_csv(folder / "train.csv", index=False)
    check.to_csv(folder / "check.csv", index=False)
    check.drop(columns=["score"]).to_csv(folder / "unscored.csv", index=False)
    return {name: folder / f"{name}.csv" for name in ("train", "check", "unscored")}


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "loss"), [("cross", "mse"), ("bi", "ordinal")])
def test_an_exported_pair_model_scores_as_its_source(variant, loss, pair_rows, tmp_path) -> None:
    source = tmp_path / variant
    params = {"max_length": 32, "batch_size": 8, "epochs": 2, "variant": variant, "loss": loss}
    request = TrainRequest(
        data=str(pair_rows["train"]), kind="pair", out=str(source), columns=COLUMNS,
        context_map=str(USPTO_TITLES), params=params,
    )  # fmt: skip
    trained = fit(prepare_train(request))
    out = tmp_path / "onnx"
    result = run_export(ExportRequest(model=str(source), out=str(out), check=pair_rows["check"]))
    report, checked = result.report, result.report["check"]
    print(variant, loss, json.dumps(checked))
    assert result.written and report["passed"] and report["min_pearson"] == 0.995
    assert checked["rows"] == 94 and checked["pearson_r"] >= 0.995, checked
    assert checked["max_abs_dscore"] <= TOLERANCE, checked
    task = checked["task_pearson"]
    assert task["source"] is not None and task["difference"] <= 0.005, task
    saved = json.loads((out / "export.json").read_text())
    assert saved["check"]["pearson_r"] == checked["pearson_r"]
    assert saved["graph"].startswith(f"minilm {variant}-encoder")

    exported = docsort.load(out)
    assert exported.kind == "onnx_pair" and exported.capabilities().scores
    data = read_rows(pair_rows["check"], COLUMNS)
    source_scores = [row["score"] for row in predict(trained, data)]
    onnx_scores = [row["score"] for row in predict(exported, data)]
    assert np.abs(np.array(source_scores) - np.array(onnx_scores)).max() <= TOLERANCE
    # without torch: (anchor, target, context) rows, the context read as its CPC title
    rows = list(zip(data.texts, data.text_pair, data.context, strict=True))[:30]
    (scores,) = without_torch([[out, rows, None]])
    assert np.abs(np.array(scores) - trained.predict(rows)).max() <= TOLERANCE

    # check rows without scores: the models' scores are still compared, no task r
    unscored = run_export(
        ExportRequest(model=str(source), out=str(tmp_path / "u"), check=pair_rows["unscored"])
    )
    assert unscored.written and unscored.report["check"]["task_pearson"] is None
    # below --min-pearson nothing is written (the scores differ by ~1e-7: r < 1)
    refused = run_export(
        ExportRequest(model=str(source), out=str(tmp_path / "no" / "m"),
                      check=pair_rows["check"], min_pearson=1.0)
    )  # fmt: skip
    assert not refused.written and not (tmp_path / "no").exists()
    # dynamic int8: written only when its scores keep r >= --min-pearson with the source's
    int8 = run_export(ExportRequest(model=str(source), out=str(tmp_path / "q"),
                                    check=pair_rows["check"], quantize="dynamic",
                                    min_pearson=0.99))  # fmt: skip
    checked = int8.report["check"]
    print(variant, loss, "int8", json.dumps(checked))
    assert int8.report["quantization"].startswith("dynamic")
    assert checked["rows"] == 94 and 0.9 < checked["pearson_r"] < 1.0
    assert int8.written == (checked["pearson_r"] >= 0.99) == (tmp_path / "q").exists()
    for asked in ({"quantize": "static", "calibration": pair_rows["check"]},
                  {"quantize": "dynamic", "keep_fp32": "auto"}):  # fmt: skip
        with pytest.raises(DocsortError, match="quantized dynamically only"):
            run_export(ExportRequest(model=str(source), out=str(tmp_path / "s"),
                                     check=pair_rows["check"], **asked))  # fmt: skip


def test_an_exported_pair_model_reads_the_context_column_as_titles(uspto_rows) -> None:
    """What the graph is given (no graph needed): the pair kind's rows, the code read as its
    title with the parent fallback, as the source model read it."""
    exported = create("onnx_pair", {"variant": "cross"})
    exported.uses_context_, exported.context_titles_ = (
        True,
        {"A47": "furniture", "H": "electricity"},
    )
    anchors, targets, titles = exported._sides(uspto_rows.subset([0, 1]))
    assert anchors == uspto_rows.texts[:2] and targets == uspto_rows.text_pair[:2]
    assert titles == [context_title(c, exported.context_titles_) for c in uspto_rows.context[:2]]
