"""``docsort predict --engine local --out DIR``: Parquet shards and a manifest over CSV, JSONL
and Parquet inputs, the same predictions as the JSONL path, resume, and rows that fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from docsort.api.batch import MANIFEST, PARTIAL_EXIT, read_output
from docsort.batch import run_batch
from docsort.cli import app
from docsort.errors import DocsortError
from tests.batch.helpers import batch_request, same_predictions


def test_local_shards_match_predict_over_three_formats(
    batch_model: Path, arxiv_shards: Path, expected_rows: list[dict], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_batch(batch_request(batch_model, arxiv_shards, out, shard_rows=300))
    assert (result.rows, result.shards, result.failed_rows) == (2000, 7, 0)
    rows = read_output(out)
    same_predictions(rows, expected_rows)
    assert [r["id"] for r in rows] == [f"doc{i}" for i in range(2000)]
    # the shards are a Parquet data set other tools read as it is (the manifest is hidden)
    table = pq.read_table(out)
    assert table.num_rows == 2000
    assert table.column_names == ["row", "id", "label", "confidence", "probabilities", "error"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] and sum(d["rows"] for d in manifest["done"]) == 2000
    assert all(len(d["sha256"]) == 64 for d in manifest["done"])
    # a shard never spans two input files: 800 CSV rows are shards of 300, 300 and 200
    assert [s["count"] for s in manifest["shards"]][:4] == [300, 300, 200, 300]


def test_a_restarted_job_redoes_only_the_shards_not_complete(
    batch_model: Path, arxiv_shards: Path, expected_rows: list[dict], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    glob = str(arxiv_shards / "*.*")
    first = run_batch(batch_request(batch_model, glob, out, shard_rows=500))
    assert first.shards == 6  # 500 + 300 rows of CSV, 500 + 100 of JSONL, 500 + 100 of Parquet
    # as after a crash: one shard's record lost, another's file cut short
    (out / "_shards" / "part-00001.json").unlink()
    data = (out / "part-00003.parquet").read_bytes()
    (out / "part-00003.parquet").write_bytes(data[: len(data) // 2])
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    result = run_batch(batch_request(batch_model, glob, out, shard_rows=500))
    assert (result.resumed_shards, result.predicted_rows) == (4, 300 + 100)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    redone = {name for name in after if after[name] != before[name]}
    assert redone == {"part-00001.parquet", "part-00003.parquet"}
    same_predictions(read_output(out), expected_rows)


def test_failed_rows_are_written_with_their_error_and_listed(
    batch_model: Path, tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_text(
        "id,title,abstract\n"
        "1,Neural speech,We train a network on speech.\n"
        "2,Too many,fields,here\n"
        "3,,\n"
        '4,Quantum,"A qubit, two lines\nof abstract."\n'
    )
    # JSONL: a key a record lacks is an empty field; a line that is no JSON fails alone
    (data / "b.jsonl").write_text('{"id": 5, "title": "Stars"}\nnot json\n\n{"id": 7}\n')
    # Parquet: a shard without the text column fails whole
    frame = pd.DataFrame({"id": [8, 9], "body": ["no title", "nor abstract"]})
    frame.to_parquet(data / "c.parquet")
    out = tmp_path / "out"
    args = ["predict", str(batch_model), str(data), "--engine", "local", "--keep", "id",
            "--out", str(out)]  # fmt: skip
    run = CliRunner().invoke(app, args)
    assert run.exit_code == PARTIAL_EXIT, run.output
    rows = read_output(out)
    assert [r["row"] for r in rows] == list(range(9))  # nothing dropped
    errors = {r["row"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {1, 2, 5, 6, 7, 8}
    assert errors[1] == "a.csv row 2: malformed row: 4 field(s), the header has 3"
    assert errors[2] == "empty text"
    assert errors[5].startswith("b.jsonl row 2: not valid JSON") and errors[6] == "empty text"
    assert errors[7].startswith("no column 'title'") and errors[8] == errors[7]
    predicted = [r["label"] is not None for r in rows]
    assert predicted == [True, False, False, True, True, False, False, False, False]
    assert [r["id"] for r in rows[:5]] == ["1", None, "3", "4", 5]
    assert "failed rows: 6 in 3 shard(s)" in run.stderr
    assert any(
        line.startswith("  part-00000") and "row 1: a.csv row 2" in line and "row 2: empty" in line
        for line in run.stderr.splitlines()
    ), run.stderr


def test_jsonl_out_keeps_todays_format(batch_model: Path, arxiv_csv: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    args = ["predict", str(batch_model), str(arxiv_csv), "--engine", "local", "--out", str(jsonl)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 240
    assert set(json.loads(lines[0])) == {"label", "confidence", "probabilities"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "ray", "out": "p.jsonl"}, "writes a folder of Parquet shards"),
        ({"engine": "dask"}, "--engine must be one of local, ray, spark"),
        ({"shard_rows": 0}, "--shard-rows must be at least 1"),
        ({"master": "local[1]"}, "--master names a Spark master: it needs --engine spark"),
        ({"out": "mine"}, "exists and is not a docsort batch output"),
        ({"data": "missing.csv"}, "file not found"),
        ({"data": "*.nothing"}, "the pattern matches no file"),
    ],
)
def test_bad_requests_are_one_line_errors(
    batch_model: Path, arxiv_csv: Path, tmp_path: Path, options: dict, message: str
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep\n")
    given = {"out": "out", **options}
    given["out"] = tmp_path / given["out"]
    if "data" in given:
        given["data"] = str(tmp_path / given["data"])
    data = given.pop("data", arxiv_csv)
    with pytest.raises(DocsortError, match=message.replace("[", r"\[")) as caught:
        run_batch(batch_request(batch_model, data, **given))
    assert "\n" not in str(caught.value)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep\n"
    assert not (tmp_path / "out").exists()


def test_a_folder_of_another_job_is_not_overwritten(
    batch_model: Path, arxiv_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_batch(batch_request(batch_model, arxiv_csv, out))
    other = tmp_path / "other.csv"
    shutil.copy(arxiv_csv, other)
    with pytest.raises(DocsortError, match="holds a batch job with other inputs"):
        run_batch(batch_request(batch_model, other, out))
    with pytest.raises(DocsortError, match="holds a batch job with other options"):
        run_batch(batch_request(batch_model, arxiv_csv, out, top_k=2))
    again = run_batch(batch_request(batch_model, arxiv_csv, out))
    assert (again.resumed_shards, again.predicted_rows) == (1, 0)


@pytest.mark.slow  # slow: 60 s at load 6 (the redactor loads in the engine's worker)
def test_a_model_trained_redacted_reads_its_shards_redacted(
    arxiv_csv: Path, tmp_path: Path
) -> None:
    """The engines read rows as ``docsort predict`` does: redacted like the training rows."""
    from docsort import api
    from docsort.redact import RedactSpec

    model = tmp_path / "redacted"
    spec = RedactSpec(mode="replace", engine="patterns")
    columns = api.Columns.parse("title,abstract", label="category")
    request = api.TrainRequest(data=arxiv_csv, out=model, redact=spec, columns=columns,
                               params={"char_ngrams": None})  # fmt: skip
    api.fit(api.prepare_train(request))
    frame = pd.read_csv(arxiv_csv).head(20)[["title", "abstract"]]
    # an address of words the model knows: read unredacted, it would move the probabilities
    frame["abstract"] = "Mail quantum.galaxy.protein@network.org. " + frame["abstract"]
    frame.insert(0, "id", [f"doc{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    expected = api.run_predict(api.PredictRequest(model, tmp_path / "rows.csv")).rows
    run_batch(batch_request(model, tmp_path / "rows.csv", tmp_path / "out"))
    same_predictions(read_output(tmp_path / "out"), expected)
