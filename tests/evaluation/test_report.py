"""Report and comparison writers: every file exists and is what it claims to be."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from docsort.data.labels import LabelSet
from docsort.errors import DocsortError
from docsort.evaluation import compute_metrics, markdown_table, write_comparison, write_report
from docsort.evaluation.report import pareto_frontier

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _single_label_metrics() -> dict:
    rng = np.random.default_rng(0)
    labels = LabelSet(("billing", "bug | report", "login", "unused"))
    y_true = rng.integers(0, 3, 60)
    proba = rng.dirichlet(np.ones(4), 60)
    proba[np.arange(60), y_true] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    return compute_metrics(labels, y_true, proba, seconds=0.5)


def _multi_label_metrics() -> dict:
    rng = np.random.default_rng(1)
    labels = LabelSet(("x", "y", "z"), multi_label=True)
    y_true = (rng.random((40, 3)) < 0.4).astype(int)
    proba = np.clip(0.5 * y_true + 0.5 * rng.random((40, 3)), 0, 1)
    return compute_metrics(labels, y_true, proba, (proba > 0.5).astype(int), seconds=0.2)


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC


def _table_rows(markdown: str, header_start: str) -> list[str]:
    """The body rows of the first table whose header starts with ``header_start``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_single_label_report(tmp_path: Path) -> None:
    metrics = _single_label_metrics()
    paths = write_report(metrics, tmp_path / "out", title="Demo run", model_info={"kind": "tfidf"})

    expected = {"metrics", "report", "confusion_matrix", "reliability", "per_class_f1"}
    assert set(paths) == expected
    assert all(p.parent == tmp_path / "out" and p.is_file() for p in paths.values())
    assert json.loads(paths["metrics"].read_text()) == json.loads(json.dumps(metrics))
    for name in ("confusion_matrix", "reliability", "per_class_f1"):
        _assert_png(paths[name])

    report = paths["report"].read_text()
    assert report.startswith("# Demo run")
    assert "| kind | tfidf |" in report
    for heading in ("accuracy", "macro-F1", "micro-F1", "weighted-F1", "ECE", "docs per s"):
        assert f"| {heading} |" in report
    rows = _table_rows(report, "| label |")
    assert len(rows) == 4
    for name in ("billing", "bug \\| report", "login", "unused"):
        assert any(row.startswith(f"| {name} |") for row in rows)
    f1s = [float(row.split(" | ")[3]) for row in rows]
    assert f1s == sorted(f1s)  # weakest first
    for png in ("confusion_matrix.png", "reliability.png", "per_class_f1.png"):
        assert f"({png})" in report
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes left nothing behind


def test_multi_label_report_draws_support_vs_f1(tmp_path: Path) -> None:
    paths = write_report(_multi_label_metrics(), tmp_path)
    assert "confusion_matrix" not in paths
    _assert_png(paths["support_vs_f1"])
    _assert_png(paths["reliability"])
    report = paths["report"].read_text()
    assert "| Hamming loss |" in report and "| samples-F1 |" in report
    assert len(_table_rows(report, "| label |")) == 3


def test_many_labels_still_render(tmp_path: Path) -> None:
    k = 45
    labels = LabelSet(tuple(f"label_{i}" for i in range(k)))
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, k, 200)
    proba = rng.dirichlet(np.ones(k), 200)
    paths = write_report(compute_metrics(labels, y_true, proba, seconds=1.0), tmp_path)
    _assert_png(paths["confusion_matrix"])
    assert len(_table_rows(paths["report"].read_text(), "| label |")) == k


def test_comparison(tmp_path: Path) -> None:
    base = _single_label_metrics()
    rows = [
        {"model": "tfidf", "kind": "tfidf", **base},
        {"model": "llm", "kind": "llm", **{**base, "accuracy": 0.9, "docs_per_second": 2.0}},
        {"model": "untimed", "kind": "x", **{**base, "docs_per_second": None}},
    ]
    paths = write_comparison(rows, tmp_path)
    assert set(paths) == {"comparison", "markdown", "accuracy_vs_throughput", "accuracy_vs_cost"}
    assert [r["model"] for r in json.loads(paths["comparison"].read_text())] == [
        "tfidf",
        "llm",
        "untimed",
    ]
    _assert_png(paths["accuracy_vs_throughput"])
    _assert_png(paths["accuracy_vs_cost"])
    table = _table_rows(paths["markdown"].read_text(), "| model |")
    assert [row.split(" | ")[0] for row in table] == ["| tfidf", "| llm", "| untimed"]
    assert "| 0.9000 |" in table[1] and "| 2.0 |" in table[1]
    with pytest.raises(DocsortError):
        write_comparison([], tmp_path)


def test_pareto_frontier_keeps_only_models_nothing_cheaper_beats() -> None:
    # (cost, accuracy): b is dearer and no better than a; d is the dearest but the best
    points = [(1.0, 0.90), (2.0, 0.90), (0.5, 0.80), (5.0, 0.95), (3.0, 0.85)]
    assert pareto_frontier(points) == [2, 0, 3]


def test_markdown_table() -> None:
    text = markdown_table(["name", "score", "n"], [["a|b", 0.5, 3], ["c", None, 10]])
    assert text.splitlines() == [
        "| name | score | n |",
        "| --- | ---: | ---: |",
        "| a\\|b | 0.5000 | 3 |",
        "| c | – | 10 |",
    ]
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [[1]])
