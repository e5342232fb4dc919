"""docsort export: a small real embed and encoder model exported to ONNX agree with their source
(fp32 within 1e-4), int8 is measured in export.json, a refused export writes nothing, and the
exported models (encoder; dual with a label added at predict time) predict in a process where
torch and transformers cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docsort.api.export import ExportRequest, run_export
from docsort.errors import DocsortError


def _export(model: Path, out: Path, check: Path, **options) -> dict:
    result = run_export(ExportRequest(model=str(model), out=str(out), check=str(check), **options))
    return {"written": result.written, **result.report}


@pytest.mark.parametrize("which", ["embed_dir", "encoder_dir"])
def test_fp32_export_agrees_and_predicts_through_load(which, request, check_csv, tmp_path):
    import docsort

    source = request.getfixturevalue(which)
    report = _export(source, tmp_path / "onnx", check_csv)
    checked = report["check"]
    assert report["written"] and report["passed"], checked
    assert checked["rows"] == 120 and checked["label_agreement"] >= 0.995
    assert checked["max_abs_dp"] <= 1e-4, checked
    print(which, json.dumps(checked))
    saved = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert saved["check"]["label_agreement"] == checked["label_agreement"]
    assert saved["onnxruntime"] and saved["quantization"].startswith("none")
    model = docsort.load(tmp_path / "onnx")
    assert model.kind == "onnx" and model.labels_.names == docsort.load(source).labels_.names
    texts = pd.read_csv(check_csv).title.head(5).tolist()
    assert model.predict(texts) == docsort.load(source).predict(texts)


@pytest.mark.slow  # 17 s; fp32 export, refusal and the torch-free run stay in the default run
def test_int8_export_records_its_numbers(embed_dir, check_csv, tmp_path) -> None:
    report = _export(embed_dir, tmp_path / "int8", check_csv, quantize="dynamic", force=True)
    saved = json.loads((tmp_path / "int8" / "export.json").read_text())
    assert saved["quantization"].startswith("dynamic int8")
    for key in ("label_agreement", "max_abs_dp", "mean_abs_dp", "docs_per_s"):
        assert saved["check"][key] is not None, key
    # int8 MatMul weights; the word embeddings (47 MB of minilm's 90) stay fp32
    assert report["graph_mb"] < 70
    print("int8", json.dumps(report["check"]))


def test_a_refused_export_writes_nothing(embed_dir, check_csv, tmp_path) -> None:
    out = tmp_path / "deep" / "refused"
    report = _export(embed_dir, out, check_csv, min_agreement=1.01)
    assert not report["written"] and not report["passed"]
    assert not out.exists() and not out.parent.exists()


def test_export_needs_check_rows_and_an_exportable_kind(trained_model_dir, tmp_path) -> None:
    with pytest.raises(DocsortError, match="needs --check"):
        run_export(ExportRequest(model=str(trained_model_dir), out=str(tmp_path / "x")))
    with pytest.raises(DocsortError, match="and ensembles holding them, not 'tfidf'"):
        run_export(ExportRequest(model=trained_model_dir, out=tmp_path / "x", check="x.csv"))


HIDE_TORCH = """
import importlib.abc, json, sys
HIDDEN = ("torch", "transformers", "sentence_transformers", "peft")
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ImportError(f"{name} is hidden in this test")
sys.meta_path.insert(0, Hide())
import docsort
from docsort.api import predict
from docsort.api.rows import read_labels
out = []
for folder, texts, labels in json.loads(sys.argv[1]):
    model = docsort.load(folder)
    if labels is None:
        out.append(model.predict(texts))
    else:  # a labels file: probabilities of exactly its labels
        rows = predict(model, texts, labels=read_labels(labels))
        out.append([row["probabilities"] for row in rows])
print(json.dumps(out))
assert not [m for m in sys.modules if m.split(".")[0] in HIDDEN]
"""


def without_torch(jobs: list) -> list:
    """Each job's (model folder, texts, labels file or None) answers, from one process where
    importing torch, transformers, sentence_transformers or peft fails."""
    run = subprocess.run(
        [sys.executable, "-c", HIDE_TORCH, json.dumps(jobs, default=str)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_exported_models_predict_without_torch(
    encoder_dir, check_csv, zero_shot_dual, dual_onnx, dual_rows, tmp_path
) -> None:
    """The encoder's labels, and the exported dual's probabilities with a label added by a
    labels file (its vector computed by the graph) equal the PyTorch models'."""
    import docsort
    from docsort.api import predict
    from docsort.api.rows import read_labels
    from tests.export.conftest import DUAL_ADDED

    _export(encoder_dir, tmp_path / "onnx", check_csv)
    texts = pd.read_csv(check_csv).abstract.head(20).tolist()
    titles = pd.read_csv(dual_rows["check"]).title.tolist()
    labels = dual_rows["labels"]
    encoder, dual = without_torch(
        [[tmp_path / "onnx", texts, None], [dual_onnx[0], titles, labels]]
    )
    assert encoder == docsort.load(encoder_dir).predict(texts)
    source = predict(zero_shot_dual[1], titles, labels=read_labels(labels))
    names = list(source[0]["probabilities"])
    assert list(dual[0]) == names and DUAL_ADDED in names and len(names) == 8
    expected = np.array([[row["probabilities"][n] for n in names] for row in source])
    got = np.array([[row[n] for n in names] for row in dual])
    # predict rounds probabilities to 6 places: 1e-5 is a few roundings (measured: 2.0e-6)
    assert np.abs(expected - got).max() <= 1e-5
    assert (expected.argmax(1) == got.argmax(1)).all()


def test_the_cli_exports(embed_dir, check_csv, tmp_path) -> None:
    from tests.conftest import run_cli

    refused = run_cli("export", str(embed_dir), "--out", str(tmp_path / "m"),
                      "--check", str(check_csv), "--min-agreement", "1.01")  # fmt: skip
    assert refused.returncode == 2 and "not written" in refused.stderr
    assert not (tmp_path / "m").exists()
