"""Int8 exports: static (QDQ) quantization calibrated on rows apart from the check rows, groups
of nodes kept in fp32 by name or found by the ``auto`` search, and what export.json says about
them; bad quantization options are one-line errors before anything is built."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from docsort.api.export import ExportRequest, run_export
from docsort.errors import DocsortError
from docsort.export.quantize import ROLES, matmul_groups, parse_keep, resolve_keep

LAYERS = 6  # minilm


def _export(model: Path, out: Path, check: Path, **options) -> dict:
    result = run_export(ExportRequest(model=str(model), out=str(out), check=str(check), **options))
    return {"written": result.written, **result.report}


def test_static_int8_keeps_the_named_groups_in_fp32(
    embed_dir, check_csv, calibration_csv, tmp_path
) -> None:
    import docsort

    out = tmp_path / "static"
    report = _export(embed_dir, out, check_csv, quantize="static", max_rows=50,
                     calibration=str(calibration_csv), keep_fp32="last", force=True)  # fmt: skip
    assert report["written"]
    saved = json.loads((out / "export.json").read_text())
    precision = saved["precision"]
    assert precision["method"] == "static" and precision["per_channel"]
    assert precision["calibration_rows"] == 56
    assert precision["calibration_data"] == str(calibration_csv)
    # the last layer's four groups (q/k/v, attention output, both feed-forward MatMuls) stay
    # fp32 with the head; the other five layers' six MatMuls each are int8
    assert precision["fp32_groups"] == [f"layer.{LAYERS - 1}.{role}" for role in ROLES]
    assert precision["quantized_matmuls"] == 6 * (LAYERS - 1)
    kept = precision["fp32_nodes"]
    assert any("/head/" in n for n in kept) and all(f"layer.{LAYERS - 1}/" in n
                                                   for n in kept if "/head/" not in n)  # fmt: skip
    assert 0 <= precision["calibration_agreement"]["label_agreement"] <= 1
    assert saved["quantization"].startswith("static int8 QDQ")
    checked = saved["check"]
    assert checked["rows"] == 50 and checked["max_abs_dp"] is not None
    print("static, last layer fp32", json.dumps(checked), precision["calibration_agreement"])

    model = docsort.load(out)
    assert model.kind == "onnx" and model.quantization == "static"
    # in the saved graph only the kept MatMuls still read fp32 weights (the others read a
    # DequantizeLinear of int8 ones)
    assert set(matmul_groups(out / "model.onnx", kept)) == set()
    assert set(matmul_groups(out / "model.onnx")) <= {*precision["fp32_groups"], "other"}
    texts = pd.read_csv(check_csv).title.head(4).tolist()
    assert len(model.predict(texts)) == 4


def test_keep_fp32_words_resolve_to_groups() -> None:
    groups = {f"layer.{i}.{role}": [f"/l{i}/{role}"] for i in range(3) for role in ROLES}
    assert resolve_keep(["first"], groups) == [f"layer.0.{r}" for r in ROLES]
    assert resolve_keep(["last", "layer.0.qkv"], groups) == [
        *(f"layer.2.{r}" for r in ROLES), "layer.0.qkv"
    ]  # fmt: skip
    assert resolve_keep(["ffn-output"], groups) == [f"layer.{i}.ffn-output" for i in range(3)]
    assert resolve_keep(["layer.1", "none"], groups) == [f"layer.1.{r}" for r in ROLES]
    with pytest.raises(DocsortError, match="'layer.7' names no node of this graph"):
        resolve_keep(["layer.7"], groups)
    assert parse_keep("first, ffn-output") == ["first", "ffn-output"]
    with pytest.raises(DocsortError, match="auto searches the groups itself"):
        parse_keep("auto,last")


def test_bad_quantization_options_are_one_line_errors(embed_dir, check_csv, tmp_path) -> None:
    out = tmp_path / "x"
    with pytest.raises(DocsortError, match="--quantize static needs --calibration DATA"):
        _export(embed_dir, out, check_csv, quantize="static")
    with pytest.raises(DocsortError, match="--quantize must be one of none, dynamic, static"):
        _export(embed_dir, out, check_csv, quantize="int4")
    with pytest.raises(DocsortError, match="--calibrate must be one of"):
        _export(embed_dir, out, check_csv, quantize="static", calibrate="kl")
    with pytest.raises(DocsortError, match="--calibration is for --quantize static or dynamic"):
        _export(embed_dir, out, check_csv, calibration=str(check_csv))
    assert not out.exists()


@pytest.mark.slow  # the auto search quantizes the encoder some 30 times: ~1-2 min
def test_auto_keeps_the_fewest_groups_that_hold_the_bound(
    encoder_dir, check_csv, calibration_csv, tmp_path
) -> None:
    out = tmp_path / "auto"
    report = _export(encoder_dir, out, check_csv, quantize="static",
                     calibration=str(calibration_csv), force=True)  # fmt: skip
    precision = report["precision"]
    trail = precision["search"]
    assert trail and trail[0]["fp32_groups"] == []  # everything int8 is tried first
    chosen = precision["calibration_agreement"]
    if trail[0]["label_agreement"] < 0.995:
        # each group was tried alone, and the chosen set holds the bound on calibration rows
        assert set(precision["sensitivity"]) >= set(precision["fp32_groups"])
        assert chosen["label_agreement"] >= 0.995 or len(precision["fp32_groups"]) == 4 * LAYERS
        # one group fewer than the kept ones does not hold it (the search is minimal)
        fewer = [t for t in trail if len(t["fp32_groups"]) == len(precision["fp32_groups"]) - 1]
        assert all(t["label_agreement"] < 0.995 for t in fewer)
    print("auto", precision["fp32_groups"], json.dumps(report["check"]))
