"""Evaluation: metrics, calibration, cost, and the reports that put them side by side."""

from docsort.evaluation.metrics import compute_metrics, compute_score_metrics
from docsort.evaluation.report import (
    markdown_table,
    write_comparison,
    write_report,
    write_score_report,
)
from docsort.models.calibration import expected_calibration_error, reliability_bins
from docsort.models.cost import CostModel

__all__ = [
    "CostModel",
    "compute_metrics",
    "compute_score_metrics",
    "expected_calibration_error",
    "markdown_table",
    "reliability_bins",
    "write_comparison",
    "write_report",
    "write_score_report",
]
