"""docsort export of an ``embed`` model whose encoder was tuned (``finetune: contrastive``):
the ONNX graph carries the tuned weights from the model dir, so it agrees with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from docsort.api.export import ExportRequest, run_export
from tests.export.conftest import _train

TUNED = {"finetune": "contrastive", "num_iterations": 1, "max_length": 32, "cache": False}


@pytest.mark.slow  # 5 min at load 7 on the shared 2-core CPU: 8 tuning steps, an fp32 export
def test_a_tuned_embed_model_exports_with_its_tuned_encoder(
    arxiv_frame: pd.DataFrame, check_csv: Path, tmp_path: Path
) -> None:
    import docsort

    source = _train(arxiv_frame, tmp_path, "embed", TUNED)
    assert (source / "encoder" / "model.safetensors").is_file()
    request = ExportRequest(model=str(source), out=str(tmp_path / "onnx"), check=str(check_csv))
    result = run_export(request)
    checked = result.report["check"]
    print(json.dumps(checked))
    assert result.written and result.report["passed"], checked
    assert checked["max_abs_dp"] <= 1e-4, checked  # base weights would be far off
    texts = pd.read_csv(check_csv).title.head(5).tolist()
    assert docsort.load(tmp_path / "onnx").predict(texts) == docsort.load(source).predict(texts)
