"""``docsort train --model encoder --workers 2`` on a local Ray: Ray Train's TorchTrainer runs
the encoder's own loop on two CPU workers (DDP, gloo), each on a disjoint half of every
batch, and the saved dir is a normal model that ``docsort eval`` and ``predict`` load, as good
as the one a single process trains; dual, embed (finetune: contrastive) and pair train on two
workers too. Slow: a local Ray and two workers loading minilm (324 s for the encoder test, which
trains twice; 38-78 s each for the others, at load 4)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest

import docsort
from tests.conftest import ARXIV_8CAT, run_cli

pytestmark = pytest.mark.slow
os.environ["HF_HUB_OFFLINE"] = "1"

CATEGORIES = ["cs.CV", "quant-ph", "astro-ph", "econ.EM"]
CONFIG = "max_length: 64\nbatch_size: 8\nepochs: 3\npatience: 3\n"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """20 training, 8 validation and 15 test rows of each of 4 arXiv categories."""
    frame = pd.read_csv(ARXIV_8CAT)
    frame = frame[frame.category.isin(CATEGORIES)].groupby("category", group_keys=False).head(43)
    rank = frame.groupby("category").cumcount()
    folder = tmp_path_factory.mktemp("arxiv")
    parts = {"train": rank < 20, "valid": (rank >= 20) & (rank < 28), "test": rank >= 28}
    paths = {}
    for name, keep in parts.items():
        paths[name] = folder / f"{name}.csv"
        frame[keep].to_csv(paths[name], index=False)
    (folder / "encoder.yaml").write_text(CONFIG)
    paths["config"] = folder / "encoder.yaml"
    return paths


def train(split: dict[str, Path], out: Path, *options: str) -> tuple[str, float]:
    started = time.perf_counter()
    result = run_cli("train", str(split["train"]), "--model", "encoder", "--config",
                     str(split["config"]), "--valid", str(split["valid"]), "--text",
                     "title,abstract", "--label", "category", *options,
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, time.perf_counter() - started


def macro_f1(model_dir: Path, test: Path, report: Path) -> float:
    result = run_cli("eval", str(model_dir), str(test), "--out", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((report / "metrics.json").read_text())["macro_f1"]


def test_two_workers_train_disjoint_halves_into_a_normal_model(split, tmp_path) -> None:
    out, seconds = train(split, tmp_path / "two", "--workers", "2")
    # 80 training rows, batches of 8: each worker 4 of each batch, none of the other's
    assert re.search(r"2 Ray workers: 40 \+ 40 rows each epoch, none shared", out), out
    model = docsort.load(tmp_path / "two")
    assert model.kind == "encoder" and sorted(model.labels_.names) == sorted(CATEGORIES)
    f1_two = macro_f1(tmp_path / "two", split["test"], tmp_path / "report-two")

    _, seconds_one = train(split, tmp_path / "one")
    f1_one = macro_f1(tmp_path / "one", split["test"], tmp_path / "report-one")
    print(f"macro-F1 2 workers {f1_two:.3f} ({seconds:.0f} s), 1 process {f1_one:.3f} "
          f"({seconds_one:.0f} s), load {os.getloadavg()[0]:.1f}")  # fmt: skip
    assert f1_two > 0.6  # chance is 0.25
    assert abs(f1_two - f1_one) <= 0.1  # the same steps on the same batches, split in two

    predicted = run_cli("predict", str(tmp_path / "two"), str(split["test"]), "--out",
                        str(tmp_path / "rows.jsonl"))  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    rows = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 60 and json.loads(rows[0])["label"] in CATEGORIES


OTHER_KINDS = [
    pytest.param("dual", {"max_length": 64, "batch_size": 8, "epochs": 2}, "labels", id="dual"),
    pytest.param(
        "embed",
        {"max_length": 64, "finetune": "contrastive", "num_iterations": 2, "cache": False},
        "labels",
        id="embed-contrastive",
    ),
    pytest.param("pair", {"max_length": 32, "batch_size": 8, "epochs": 2}, "pairs", id="pair"),
]


@pytest.mark.parametrize(("kind", "params", "data"), OTHER_KINDS)
def test_the_other_fine_tuned_kinds_train_on_two_workers(split, uspto_rows, tmp_path, kind,
                                                         params, data) -> None:  # fmt: skip
    from docsort import api

    if data == "pairs":
        rows, columns = uspto_rows, api.Columns()
    else:
        rows = str(split["train"])
        columns = api.Columns(text=("title", "abstract"), label="category")
    plan = api.prepare_train(api.TrainRequest(data=rows, kind=kind, params=params,
                                              columns=columns, workers=2,
                                              out=tmp_path / kind))  # fmt: skip
    api.fit(plan)
    run = plan.workers_run
    assert run["workers"] == 2 and run["shared_rows"] == 0
    assert abs(run["rows_per_worker"][0] - run["rows_per_worker"][1]) <= 1
    model = docsort.load(tmp_path / kind)
    if data == "pairs":
        scores = model.predict([(rows.texts[0], rows.text_pair[0], rows.context[0])])
        assert 0.0 <= scores[0] <= 1.0
    else:
        assert model.predict(["a survey of galaxy clusters"])[0] in CATEGORIES
