"""Small real models the export tests share: an embed probe and a one-epoch encoder on 64 arXiv
rows, with check rows (120) and calibration rows (56) they were not trained on."""

from __future__ import annotations

from pathlib import Path

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
