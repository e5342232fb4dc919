"""Evaluation: metrics, calibration, cost, and the reports that put them side by side."""

from docsort.evaluation.calibration import expected_calibration_error, reliability_bins
from docsort.evaluation.cost import CostModel
from docsort.evaluation.metrics import compute_metrics
from docsort.evaluation.report import markdown_table, write_comparison, write_report

__all__ = [
    "CostModel",
    "compute_metrics",
    "expected_calibration_error",
    "markdown_table",
    "reliability_bins",
    "write_comparison",
    "write_report",
]
