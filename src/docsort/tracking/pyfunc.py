"""The MLflow model of a docsort model: a ``python_function`` flavor wrapping the saved model
directory (logged as its ``model`` artifact). ``mlflow.pyfunc.load_model("models:/NAME@champion")``,
``mlflow models serve`` and ``mlflow.pyfunc.spark_udf`` run it wherever docsort is installed.

An entry point like the CLI: a DataFrame with the columns the model was trained on (``text``,
or ``title`` and ``abstract``, or a pair model's ``anchor``/``target``/``context``) goes through
the same ``docsort.api`` request as ``docsort predict``, so the numbers are the same.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc
import pandas as pd

from docsort import api
from docsort.errors import DocsortError
from docsort.tracking.models import ARTIFACT, input_columns


class DocsortModel(mlflow.pyfunc.PythonModel):
    """Predicts a DataFrame: one row per input row, with ``label`` (multi-label: ``labels``),
    ``confidence`` and ``probabilities`` (a JSON object of label: probability, as ``docsort
    predict`` writes it), ``stage`` for a cascade; a pair model gives ``score``."""

    def load_context(self, context: Any) -> None:
        self.model = api.open_model(context.artifacts[ARTIFACT])

    # the DataFrame hint: MLflow validates the input against the logged signature, not a hint
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return predict_frame(self.model, model_input)


def predict_frame(model: Any, frame: Any) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if frame.empty:
        raise DocsortError("nothing to predict: the DataFrame has no rows")
    records = frame.to_dict("records")
    rows = api.run_predict(api.PredictRequest(model=model, data=records)).rows
    if len(rows) != len(records):  # records with an empty text are skipped by the reader
        raise DocsortError(
            f"{len(records) - len(rows)} of {len(records)} rows have an empty text in the "
            f"columns {', '.join(input_columns(model.input_spec_))}: every row needs one"
        )
    out = pd.DataFrame(rows)
    if "probabilities" in out:
        out["probabilities"] = [json.dumps(p, ensure_ascii=False) for p in out["probabilities"]]
    return out
