"""The MLflow model of a docsort model: ``mlflow.pyfunc.load_model`` on a registry URI gives
``docsort predict``'s numbers for a DataFrame of the trained columns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from docsort import api

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


def test_pyfunc_predicts_what_docsort_predict_does(
    registry: str, champion: str, model_dir: Path, holdout_csv: Path
) -> None:
    import mlflow

    from docsort.tracking.client import session

    frame = pd.read_csv(holdout_csv)
    expected = api.run_predict(api.PredictRequest(model=model_dir, data=holdout_csv)).rows
    with session():  # the registry URI of the session's fixture
        model = mlflow.pyfunc.load_model(champion)
    out = model.predict(frame[["title", "abstract"]])
    assert list(out.columns) == ["label", "confidence", "probabilities"]
    assert list(out["label"]) == [row["label"] for row in expected]
    assert list(out["confidence"]) == [row["confidence"] for row in expected]
    assert [json.loads(p) for p in out["probabilities"]] == [
        row["probabilities"] for row in expected
    ]

    signature = model.metadata.get_input_schema()
    assert signature.input_names() == ["title", "abstract"]
    with pytest.raises(mlflow.exceptions.MlflowException, match="abstract"):
        model.predict(frame[["title"]])  # a trained column missing
