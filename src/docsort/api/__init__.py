"""The one way in: every entry point (the CLI, the service, batch engines) and every notebook
calls these. Requests are validated once, here; models and data never import this package.

- ``train`` / ``TrainRequest`` → ``prepare_train`` (checked, rows read) → ``fit``
- ``evaluate`` / ``EvalRequest`` → ``run_evaluate``; ``compare`` / ``CompareRequest``
- ``predict`` / ``PredictRequest`` → ``run_predict`` (the lean path: no report code)
- ``AuditRequest`` → ``run_audit`` (label errors); ``SuggestRequest`` → ``run_suggest``
  (what to label next)
- ``run_distill`` / ``DistillRequest``: a teacher labels unlabelled rows, a student learns
- ``run_augment`` / ``AugmentRequest``: new rows for weak classes (paraphrase, back-translation)
- ``ensemble``; admin: data sets, model aliases, the cache, the demo
"""

from docsort.api.active import SuggestRequest, SuggestResult, run_suggest
from docsort.api.admin import (
    builtin_datasets,
    cache_usage,
    clear_cache,
    dataset_summary,
    fetch_models,
    models_table,
    run_demo,
)
from docsort.api.audit import AuditRequest, AuditResult, run_audit
from docsort.api.augmentation import AugmentRequest, AugmentResult, AugmentSpec, run_augment
from docsort.api.common import open_model, read_config, zero_shot_model
from docsort.api.distill import DistillRequest, DistillResult, run_distill
from docsort.api.ensemble import ensemble
from docsort.api.evaluation import (
    CompareRequest,
    EvalRequest,
    EvalResult,
    compare,
    evaluate,
    evaluation_rows,
    model_summary,
    run_compare,
    run_evaluate,
)
from docsort.api.prediction import (
    PredictRequest,
    PredictResult,
    Run,
    predict,
    predict_proba_batched,
    run_batched,
    run_predict,
    with_labels,
)
from docsort.api.rows import Columns, jsonl_lines, prediction_rows, read_rows, write_jsonl
from docsort.api.training import TrainPlan, TrainRequest, fit, prepare_train, train
from docsort.errors import DocsortError
from docsort.io import install_termination_handler
from docsort.models.base import Runtime

__all__ = [
    "AuditRequest",
    "AuditResult",
    "AugmentRequest",
    "AugmentResult",
    "AugmentSpec",
    "Columns",
    "CompareRequest",
    "DistillRequest",
    "DistillResult",
    "DocsortError",
    "EvalRequest",
    "EvalResult",
    "PredictRequest",
    "PredictResult",
    "Run",
    "Runtime",
    "SuggestRequest",
    "SuggestResult",
    "TrainPlan",
    "TrainRequest",
    "builtin_datasets",
    "cache_usage",
    "clear_cache",
    "compare",
    "dataset_summary",
    "ensemble",
    "evaluate",
    "evaluation_rows",
    "fetch_models",
    "fit",
    "install_termination_handler",
    "jsonl_lines",
    "model_summary",
    "models_table",
    "open_model",
    "predict",
    "predict_proba_batched",
    "prepare_train",
    "prediction_rows",
    "read_config",
    "read_rows",
    "run_batched",
    "run_audit",
    "run_compare",
    "run_augment",
    "run_distill",
    "run_demo",
    "run_evaluate",
    "run_predict",
    "run_suggest",
    "train",
    "with_labels",
    "write_jsonl",
    "zero_shot_model",
]
