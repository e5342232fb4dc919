"""``--engine spark``: the same rows as the local engine (mapInPandas, local[2]). One Spark
session per module (start-up is slow)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docsort.api.batch import read_output
from docsort.batch import run_batch
from tests.batch.helpers import arxiv_rows, batch_request, same_predictions

pytest.importorskip("pyspark", reason="the spark extra is not installed")
# a local Spark takes 10-90 s to start on this 2-core machine: over the default run's budget
# (measured in docs/batch.md), so these run with -m slow
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_spark() -> Iterator[Any]:
    from docsort.batch.spark_engine import session

    spark, _ = session("local[2]")
    yield spark
    spark.stop()


def test_spark_gives_the_local_engines_rows(
    local_spark: Any,
    batch_model: Path,
    arxiv_shards: Path,
    expected_rows: list[dict],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    request = batch_request(batch_model, arxiv_shards, out, engine="spark", shard_rows=300)
    result = run_batch(request)
    assert (result.rows, result.failed_rows, result.engine) == (2000, 0, "spark")
    same_predictions(read_output(out), expected_rows)
    # predicted in Spark's Python workers, each opening the model once (workers are reused)
    records = [json.loads(p.read_text()) for p in out.glob("_shards/*.json")]
    assert f"{socket.gethostname()}:{os.getpid()}" not in {r["worker"] for r in records}
    assert {r["model_loads"] for r in records} == {1}


def test_spark_lists_failed_rows_and_resumes(
    local_spark: Any, batch_model: Path, tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    rows = arxiv_rows(300)
    rows.iloc[:200].to_csv(data / "a.csv", index=False)
    rows.iloc[200:].to_parquet(data / "b.parquet")
    with (data / "a.csv").open("a") as handle:
        handle.write('doc-bad,"a title",too,many\n')
    out = tmp_path / "out"
    first = run_batch(batch_request(batch_model, data, out, engine="spark", shard_rows=50))
    assert first.failed_rows == 1 and first.failed[0].errors[0]["row"] == 200
    (out / "_shards" / "part-00002.json").unlink()
    again = run_batch(batch_request(batch_model, data, out, engine="spark", shard_rows=50))
    assert (again.resumed_shards, again.predicted_rows) == (first.shards - 1, 50)
    got = read_output(out)
    assert [r["row"] for r in got] == list(range(301))


def test_spark_gives_the_local_engines_rows_on_10k_rows(
    local_spark: Any, batch_model: Path, tmp_path: Path
) -> None:
    from docsort import api

    data = tmp_path / "rows.parquet"
    frame = arxiv_rows(10_000)
    frame.to_parquet(data, row_group_size=1000)
    expected = api.run_predict(
        api.PredictRequest(model=batch_model, data=frame.to_dict("records"))
    ).rows
    out = tmp_path / "out"
    run_batch(batch_request(batch_model, data, out, engine="spark", shard_rows=2500))
    same_predictions(read_output(out), expected)
