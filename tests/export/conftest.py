"""Small real models the export tests share: an embed probe and a one-epoch encoder on 64 arXiv
rows, with check rows (120) and calibration rows (56) they were not trained on; a zero-shot dual
over 7 arXiv categories, exported, with a labels file adding the 8th."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from docsort.api import Columns, TrainRequest, fit, prepare_train

COLUMNS = Columns.parse("title,abstract", label="category")


@pytest.fixture(scope="session")
def check_csv(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 arXiv rows the models were not trained on: 15 per category."""
    path = tmp_path_factory.mktemp("check") / "check.csv"
    arxiv_frame.groupby("category", group_keys=False).tail(15).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def calibration_csv(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """56 arXiv rows apart from the training and the check rows: 7 per category."""
    path = tmp_path_factory.mktemp("calibration") / "calibration.csv"
    rows = arxiv_frame.groupby("category", group_keys=False).head(15)
    rows.groupby("category", group_keys=False).tail(7).to_csv(path, index=False)
    return path


def _train(frame: pd.DataFrame, folder: Path, kind: str, params: dict) -> Path:
    rows = frame.groupby("category", group_keys=False).head(8).reset_index(drop=True)
    data = folder / "train.csv"
    rows.to_csv(data, index=False)
    out = folder / kind
    request = TrainRequest(data=str(data), kind=kind, params=params, columns=COLUMNS, out=str(out))
    fit(prepare_train(request))
    return out


@pytest.fixture(scope="session")
def embed_dir(arxiv_frame, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("embed")
    return _train(arxiv_frame, folder, "embed", {"max_length": 64, "cache": False})


@pytest.fixture(scope="session")
def encoder_dir(arxiv_frame, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("encoder")
    params = {"max_length": 32, "batch_size": 8, "epochs": 1, "device": "cpu"}
    return _train(arxiv_frame, folder, "encoder", params)


# -- dual: a zero-shot model over 7 of the 8 arXiv categories, the 8th added at predict time
DUAL_ADDED = "astro-ph"


@pytest.fixture(scope="session")
def dual_rows(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Training rows without astro-ph, 56 check rows (7 per category, astro-ph's too) and a
    labels file with all 8 categories' descriptions."""
    from tests.models.test_dual import ARXIV

    folder = tmp_path_factory.mktemp("dual-rows")
    train = arxiv_frame[arxiv_frame.category != DUAL_ADDED].groupby("category").head(8)
    train.to_csv(folder / "train.csv", index=False)
    check = arxiv_frame.groupby("category", group_keys=False).tail(7)
    check.to_csv(folder / "check.csv", index=False)
    labels = folder / "labels.yaml"
    labels.write_text("".join(f"{name}: {json.dumps(t)}\n" for name, t in ARXIV.items()), "utf-8")
    return {"train": folder / "train.csv", "check": folder / "check.csv", "labels": labels}


def train_dual(rows: dict, out: Path, text: str, params: dict) -> tuple[Path, Any]:
    """A dual model trained through the API on ``rows``' 7 categories (their descriptions),
    saved at ``out``, and the trained object."""
    from tests.models.test_dual import ARXIV

    descriptions = {name: t for name, t in ARXIV.items() if name != DUAL_ADDED}
    request = TrainRequest(
        data=str(rows["train"]), kind="dual", out=str(out),
        params={"descriptions": descriptions, **params},
        columns=Columns.parse(text, label="category"),
    )  # fmt: skip
    return out, fit(prepare_train(request))


@pytest.fixture(scope="session")
def zero_shot_dual(dual_rows, tmp_path_factory) -> tuple[Path, Any]:
    """Zero-shot over the 7 descriptions, reading titles (32 tokens): no training steps."""
    out = tmp_path_factory.mktemp("dual") / "zero-shot"
    params = {"zero_shot": True, "max_length": 32, "label_max_length": 32}
    return train_dual(dual_rows, out, "title", params)


@pytest.fixture(scope="session")
def dual_onnx(zero_shot_dual, dual_rows, tmp_path_factory) -> tuple[Path, dict]:
    """The zero-shot dual exported (fp32), checked on the 56 rows: its folder and report."""
    from docsort.api.export import ExportRequest, run_export

    out = tmp_path_factory.mktemp("dual-onnx") / "onnx"
    request = ExportRequest(model=str(zero_shot_dual[0]), out=str(out), check=dual_rows["check"])
    result = run_export(request)
    assert result.written, result.report
    return out, result.report
