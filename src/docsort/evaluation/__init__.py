"""Evaluation: metrics, calibration, cost, and the reports that put them side by side."""

from docsort.evaluation.calibration import expected_calibration_error, reliability_bins
from docsort.evaluation.cost import CostModel
from docsort.evaluation.metrics import compute_metrics, compute_score_metrics
from docsort.evaluation.report import (
    markdown_table,
    write_comparison,
    write_report,
    write_score_report,
)

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
