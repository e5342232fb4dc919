"""``docsort train --workers N``, what is decided before any Ray starts: which kinds can train on
workers (a capability, never a name), and every bad option as one line. The runs on real Ray
Train workers are in test_train_workers.py (slow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import docsort.models.kinds  # noqa: F401  (registers the kinds)
from docsort import api
from docsort.errors import DocsortError
from docsort.models.base import create
from tests.api.test_layers import offending
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("kind", "params", "can"),
    [
        ("encoder", {}, True),
        ("pair", {}, True),
        ("dual", {}, True),
        ("dual", {"zero_shot": True}, False),  # reads labels only: no loop
        ("embed", {"finetune": "contrastive"}, True),
        ("embed", {}, False),  # a head on frozen vectors
        ("tfidf", {}, False),
    ],
)
def test_kinds_declare_whether_their_loop_runs_on_workers(kind, params, can) -> None:
    assert create(kind, params).capabilities().trains_on_workers is can


def plan(arxiv_csv: Path, **options):
    request = api.TrainRequest(
        data=str(arxiv_csv),
        columns=api.Columns(text=("title", "abstract"), label="category"),
        **options,
    )
    return api.prepare_train(request)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "encoder", "workers": 0}, "--workers must be a whole number of at least 1"),
        ({"kind": "tfidf", "workers": 2}, "a tfidf model has none to share"),
        ({"kind": "encoder", "address": "auto"}, "--address applies to training on workers"),
        ({"kind": "encoder", "storage": "/tmp/x"}, "--storage applies to training on workers"),
        ({"kind": "encoder", "workers": 2, "cpus_per_worker": 0}, "--cpus-per-worker must be"),
        (
            {
                "kind": "encoder",
                "workers": 2,
                "runtime": api.Runtime(resume=True, checkpoint_dir="/tmp/ckpt"),
            },
            "--workers does not resume a checkpoint",
        ),
        (
            {"kind": "encoder", "workers": 1, "runtime": api.Runtime(device="cuda")},
            "--workers 1 --device cuda needs a GPU per worker and this machine has 0",
        ),
        (
            {"kind": "encoder", "workers": (os.cpu_count() or 1) + 1},
            f"and this machine has {os.cpu_count()}: use fewer workers, or --address",
        ),
    ],
)
def test_bad_worker_options_are_one_line_before_any_work(arxiv_csv, options, message) -> None:
    with pytest.raises(DocsortError, match=message.replace("(", r"\(")) as caught:
        plan(arxiv_csv, **options)
    assert "\n" not in str(caught.value)


def test_more_workers_than_cpus_are_fine_on_a_cluster(arxiv_csv) -> None:
    checked = plan(arxiv_csv, kind="encoder", workers=64, address="10.0.0.1:6379")
    assert checked.request.workers == 64  # the cluster's size is the cluster's to judge


def test_the_cli_says_what_to_fix_in_one_line(arxiv_csv, tmp_path) -> None:
    result = run_cli("train", str(arxiv_csv), "--text", "title,abstract", "--label", "category",
                     "--workers", "2", "--out", str(tmp_path / "m"))  # fmt: skip
    assert result.returncode != 0
    assert "tfidf model has none to share" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m").exists()


def test_each_worker_takes_a_disjoint_share_of_every_batch() -> None:
    from docsort.models.nn.distributed import share

    for n in (1, 7, 16):
        rows = np.random.default_rng(n).permutation(100)[:n]
        parts = [share(rows, rank, 2) for rank in range(2)]
        assert sorted(np.concatenate(parts).tolist()) == sorted(rows.tolist())
        assert not set(parts[0]) & set(parts[1])
        assert abs(len(parts[0]) - len(parts[1])) <= 1


def test_the_cluster_package_imports_neither_the_api_nor_the_cli() -> None:
    assert offending("cluster", forbidden=("docsort.api", "docsort.cli")) == []
