"""Batch prediction into a folder of Parquet shards: the request, the shard plan, the one
function every engine runs on a batch of rows, and the manifest that makes a job resumable.

A job reads its inputs (a CSV / TSV / JSONL / Parquet file, a folder of such shards, or a
glob) as a list of *shards*: row ranges of at most ``shard_rows`` rows of one input file,
fixed once when the job starts and recorded in ``OUT/_manifest.json``. Each shard is read,
predicted and written on its own (``OUT/part-NNNNN.parquet``, then its completion record
``OUT/_shards/part-NNNNN.json`` with the row count and the file's SHA-256), by whichever
engine runs it: in this process (``local``), in a Ray actor or in a Spark executor
(``docsort.batch``). A restarted job skips every shard whose record and file agree, so a crash
loses no finished shard and duplicates none. Every output row carries ``row``, its input row's
0-based position over all input files in order, and ``error``: a row that cannot be predicted
(a malformed line, a missing column, an empty text) is written with its error, never dropped.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from docsort.api.common import long_doc_for
from docsort.api.prediction import OUTPUT_FIELDS, _model_of, predict
from docsort.api.redaction import redact_like_training
from docsort.api.rows import Columns, read_labels
from docsort.data.dataset import Dataset, from_frame
from docsort.errors import DocsortError
from docsort.io import write_json
from docsort.models.base import Classifier, Runtime

MANIFEST = "_manifest.json"
RECORDS = "_shards"
FORMAT = "docsort-batch/1"
BATCH_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
ENGINES = ("local", "ray", "spark")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARTIAL_EXIT = 3  # the CLI's exit status when the job finished but some rows failed
LISTED_ERRORS = 100  # failing rows listed per shard record (all of them are in the shard)
_ROW = "__docsort_row__"  # the position column while a batch is in flight
_MODEL_LOADS = 0  # ShardPredictors made in this process (each opens the model)


@dataclass
class BatchRequest:
    """Predict every row of ``data`` into the folder ``out`` with ``engine``."""

    model: str | Path
    data: str | Path
    out: str | Path
    engine: str = "local"
    columns: Columns = field(default_factory=Columns)
    labels: str | Path | None = None
    top_k: int | None = None
    at_least_one: bool = False
    long_doc: dict[str, Any] | None = None
    runtime: Runtime | None = None
    shard_rows: int = 10_000
    # Ray: a cluster address (None: a local one), actors, resources per actor
    address: str | None = None
    concurrency: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    # Spark: the master URL
    master: str | None = None


@dataclass(frozen=True)
class Shard:
    """Rows ``start`` .. ``start + count - 1`` of input file ``file`` (read from byte
    ``offset`` for CSV and JSONL); ``first_row`` is the position of its first row over all
    inputs."""

    id: int
    file: str
    format: str
    start: int
    count: int
    offset: int
    first_row: int

    @property
    def name(self) -> str:
        return f"part-{self.id:05d}"


@dataclass(frozen=True)
class PredictorSpec:
    """What a worker needs to predict shards: plain values only, so that it pickles to a Ray
    actor or a Spark executor, which open the model from ``model`` (a path they can read)."""

    model: str
    out: str
    columns: Columns
    labels: str | None = None
    top_k: int | None = None
    at_least_one: bool = False
    long_doc: dict[str, Any] | None = None
    runtime: Runtime | None = None


@dataclass
class ShardReport:
    """One finished shard as its record says."""

    id: int
    file: str
    rows: int
    failed: int
    errors: list[dict[str, Any]]
    sha256: str
    bytes: int
    seconds: float
    first_row: int
    worker: str = ""  # host:pid of the process that predicted it
    model_loads: int = 0  # models that process had opened by then (1: opened once)

    @property
    def name(self) -> str:
        return f"part-{self.id:05d}"


@dataclass
class BatchResult:
    out: Path
    engine: str
    rows: int  # all rows of the job
    shards: int
    resumed_shards: int  # complete before this run, skipped
    predicted_rows: int  # rows predicted by this run
    seconds: float
    failed: list[ShardReport]  # shards with failed rows (all of the job's)

    @property
    def failed_rows(self) -> int:
        return sum(s.failed for s in self.failed)

    @property
    def rows_per_second(self) -> float:
        return self.predicted_rows / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------- the job


class BatchJob:
    """A checked request with its shard plan: which shards are done, which are left, and the
    manifest kept up to date as shards finish (``finish``)."""

    def __init__(self, request: BatchRequest) -> None:
        self.request = request
        _check_options(request)
        self.out = Path(request.out)
        self.files = expand_inputs(request.data)
        self.spec = PredictorSpec(
            model=_model_reference(request.model),
            out=str(self.out.resolve()),
            columns=request.columns,
            labels=None if request.labels is None else str(Path(request.labels).resolve()),
            top_k=request.top_k,
            at_least_one=request.at_least_one,
            long_doc=request.long_doc,
            runtime=request.runtime,
        )
        # open the model once here: a bad model, labels file or option fails before any
        # engine starts, and the output columns are known
        self.predictor = ShardPredictor(self.spec)
        self.fields = self.predictor.fields
        self.identity = self._identity()
        self.shards, self.done = self._open_folder()
        self.resumed = len(self.done)
        self.started = time.perf_counter()
        self._last_write = 0.0

    @property
    def total_rows(self) -> int:
        return sum(s.count for s in self.shards)

    def pending(self) -> list[Shard]:
        return [s for s in self.shards if s.id not in self.done]

    def tasks(self) -> list[dict[str, Any]]:
        """The pending shards as plain dicts (what engines hand to their workers)."""
        return [asdict(s) for s in self.pending()]

    def finish(self, record: dict[str, Any]) -> ShardReport:
        """A worker finished a shard: remember it; the manifest is rewritten at most every
        two seconds (each shard's own record is already on disk)."""
        report = ShardReport(**record)
        self.done[report.id] = report
        if time.perf_counter() - self._last_write > 2.0:
            self._write_manifest()
        return report

    def absorb_records(self) -> list[ShardReport]:
        """Shards whose records appeared on disk since the last look (an engine whose
        workers report only at the end, Spark, shows progress this way)."""
        found = []
        for shard in self.pending():
            report = _verified_record(self.out, shard)
            if report is not None:
                found.append(self.finish(asdict(report)))
        return found

    def close(self) -> BatchResult:
        self.absorb_records()
        missing = [s.name for s in self.pending()]
        seconds = time.perf_counter() - self.started
        self._write_manifest(complete=not missing, seconds=seconds)
        if missing:
            raise DocsortError(
                f"{len(missing)} shard(s) of {self.out} were not written ({missing[0]} first): "
                "run the same command again to finish them"
            )
        failed = [r for r in sorted(self.done.values(), key=lambda r: r.id) if r.failed]
        predicted = sum(self.done[s.id].rows for s in self.shards) - self._resumed_rows
        return BatchResult(
            out=self.out,
            engine=self.request.engine,
            rows=self.total_rows,
            shards=len(self.shards),
            resumed_shards=self.resumed,
            predicted_rows=predicted,
            seconds=seconds,
            failed=failed,
        )

    # ----------------------------------------------------------------------- internals

    def _identity(self) -> dict[str, Any]:
        """What makes two runs the same job: inputs (by path, size and modification time),
        model (by path and manifest), columns and options."""
        spec = asdict(self.spec)
        spec.pop("out")
        spec.pop("runtime")  # how to run it is not what is computed
        return {
            "format": FORMAT,
            "inputs": [_file_stamp(f) for f in self.files],
            "model": _model_stamp(self.spec.model),
            "predictor": json.loads(json.dumps(spec, default=str)),
            "shard_rows": self.request.shard_rows,
        }

    def _open_folder(self) -> tuple[list[Shard], dict[int, ShardReport]]:
        manifest_path = self.out / MANIFEST
        if manifest_path.is_file():
            manifest = _read_json(manifest_path)
            if manifest.get("job") != self.identity:
                raise DocsortError(
                    f"{str(self.out)!r} holds a batch job with other "
                    f"{_what_differs(manifest.get('job') or {}, self.identity)}: give a new "
                    "--out, or remove that folder to start over"
                )
            shards = [Shard(**s) for s in manifest["shards"]]
            done = {}
            for shard in shards:
                report = _verified_record(self.out, shard)
                if report is not None:
                    done[shard.id] = report
            self._resumed_rows = sum(r.rows for r in done.values())
            return shards, done
        if os.path.lexists(self.out) and not self.out.is_dir():
            raise DocsortError(f"{str(self.out)!r} is a file: give a folder for the shards")
        if self.out.is_dir() and any(self.out.iterdir()):
            raise DocsortError(
                f"{str(self.out)!r} exists and is not a docsort batch output "
                "(use an empty or new folder)"
            )
        shards = plan_shards(self.files, self.request.shard_rows)
        self._resumed_rows = 0
        self.shards = shards
        self.done = {}
        self._write_manifest(complete=False)
        return shards, {}

    def _write_manifest(self, complete: bool = False, seconds: float | None = None) -> None:
        self._last_write = time.perf_counter()
        reports = [self.done[s.id] for s in self.shards if s.id in self.done]
        manifest: dict[str, Any] = {
            "job": self.identity,
            "engine": self.request.engine,
            "columns": ["row", *self.request.columns.keep, *self.fields, "error"],
            "rows": self.total_rows,
            "complete": complete,
            "shards": [asdict(s) for s in self.shards],
            "done": [
                {k: v for k, v in asdict(r).items() if k != "errors"} | {"errors": r.errors[:10]}
                for r in reports
            ],
        }
        if seconds is not None:
            manifest["last_run"] = {
                "engine": self.request.engine,
                "seconds": round(seconds, 3),
                "resumed_shards": self.resumed,
            }
        write_json(self.out / MANIFEST, manifest)  # creates the folder, errors in one line


def prepare_batch(request: BatchRequest) -> BatchJob:
    """Check ``request``, open its model, plan its shards or pick up the job already in
    ``out``; the engines then run ``job.tasks()`` and report each record to ``job.finish``."""
    return BatchJob(request)


def _check_options(request: BatchRequest) -> None:
    if request.engine not in ENGINES:
        raise DocsortError(f"--engine must be one of {', '.join(ENGINES)}, not {request.engine!r}")
    if str(request.out) == "-" or Path(str(request.out)).suffix.lower() in JSON_SUFFIXES:
        raise DocsortError(
            f"--engine {request.engine} writes a folder of Parquet shards: give --out DIR "
            "(JSON lines: --engine local --out FILE.jsonl)"
        )
    if request.address is not None and request.engine != "ray":
        raise DocsortError("--address names a Ray cluster: it needs --engine ray")
    if request.master is not None and request.engine != "spark":
        raise DocsortError("--master names a Spark master: it needs --engine spark")
    if not isinstance(request.shard_rows, int) or request.shard_rows < 1:
        raise DocsortError(f"--shard-rows must be at least 1, not {request.shard_rows!r}")
    if request.top_k is not None and request.top_k < 1:
        raise DocsortError(f"--top-k must be at least 1, not {request.top_k}")
    if request.concurrency is not None and request.concurrency < 1:
        raise DocsortError(f"--concurrency must be at least 1, not {request.concurrency}")
    if not request.num_cpus > 0 or not math.isfinite(request.num_cpus):
        raise DocsortError(f"--num-cpus must be a positive number, not {request.num_cpus}")
    if not request.num_gpus >= 0 or not math.isfinite(request.num_gpus):
        raise DocsortError(f"--num-gpus must be 0 or more, not {request.num_gpus}")
    taken = sorted(set(request.columns.keep) & {*OUTPUT_FIELDS, "row", "error"})
    if taken:
        raise DocsortError(
            f"--keep {taken[0]!r} would be overwritten by the output's own {taken[0]!r} "
            "column: rename that input column"
        )
    if str(request.data) == "-" or str(request.data).startswith("builtin:"):
        raise DocsortError(
            "--out DIR reads files (CSV, JSONL, Parquet, a folder or a glob of them), not "
            f"{str(request.data)!r}: give a file, or --out FILE.jsonl without --engine"
        )


def _model_reference(model: str | Path) -> str:
    """A saved model by absolute path (workers may run elsewhere), or a zero-shot spec."""
    path = Path(str(model))
    return str(path.resolve()) if path.exists() else str(model)


# --------------------------------------------------------------------------- inputs


def expand_inputs(data: str | Path) -> list[Path]:
    """The input files of ``data``: a file, the CSV/JSONL/Parquet files of a folder (hidden
    and ``_`` names left out, as Spark and Arrow do), or the files a glob matches; sorted."""
    given = str(data)
    path = Path(given)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in BATCH_SUFFIXES
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not files:
            raise DocsortError(
                f"{given}: no CSV, TSV, JSONL or Parquet files in that folder (a folder of "
                ".txt files: predict it with --out FILE.jsonl)"
            )
    elif path.is_file():
        files = [path]
    elif glob.has_magic(given):
        files = sorted(Path(p) for p in glob.glob(given, recursive=True) if Path(p).is_file())
        if not files:
            raise DocsortError(f"{given}: the pattern matches no file")
    else:
        raise DocsortError(f"file not found: {given}")
    for file in files:
        if file.suffix.lower() not in BATCH_SUFFIXES:
            raise DocsortError(
                f"cannot read {file}: unknown file type {file.suffix or '(none)'}; batch "
                f"prediction reads {', '.join(sorted(BATCH_SUFFIXES))}"
            )
    return [f.resolve() for f in files]


def plan_shards(files: list[Path], shard_rows: int) -> list[Shard]:
    """Cut every input file into shards of at most ``shard_rows`` rows, in order. CSV and
    JSONL are scanned once to find where each shard starts (a byte offset); Parquet says its
    row count in its footer."""
    shards: list[Shard] = []
    position = 0
    for file in files:
        fmt = BATCH_SUFFIXES[file.suffix.lower()]
        for start, count, offset in _cut(file, fmt, shard_rows):
            shards.append(Shard(len(shards), str(file), fmt, start, count, offset, position))
            position += count
    if not shards:
        raise DocsortError(f"{files[0] if len(files) == 1 else 'the inputs'}: no rows to predict")
    return shards


def _cut(file: Path, fmt: str, size: int) -> Iterator[tuple[int, int, int]]:
    if fmt == "parquet":
        total = _parquet_file(file).metadata.num_rows
        for start in range(0, total, size):
            yield start, min(size, total - start), 0
        return
    offsets = []
    count = 0
    for offset, _ in (_csv_records if fmt in ("csv", "tsv") else _json_lines)(file, fmt):
        if count % size == 0:
            offsets.append(offset)
        count += 1
    for k, offset in enumerate(offsets):
        yield k * size, min(size, count - k * size), offset


def _allow_long_fields() -> None:
    """csv refuses fields over 128 KiB by default; pandas (the JSONL path) reads any: so do we
    (a text is cut to ``MAX_TEXT_CHARS`` afterwards, as there)."""
    limit = 2**31 - 1
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


class _Lines:
    """The lines of a binary file, decoded, counting the bytes read (csv reads through it)."""

    def __init__(self, handle: Any, offset: int) -> None:
        self.handle, self.offset = handle, offset

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.handle.readline()
        if not line:
            raise StopIteration
        self.offset += len(line)
        return line.decode("utf-8", errors="replace")


def _csv_header(file: Path, fmt: str) -> tuple[list[str], int]:
    _allow_long_fields()
    with file.open("rb") as handle:
        lines = _Lines(handle, 0)
        reader = csv.reader(lines, delimiter="\t" if fmt == "tsv" else ",")
        for record in reader:
            if record:
                header = [
                    name.lstrip("\ufeff") if i == 0 else name for i, name in enumerate(record)
                ]
                return header, lines.offset
    raise DocsortError(f"{file}: the file is empty (a CSV needs a header line)")


def _csv_records(
    file: Path, fmt: str, offset: int | None = None
) -> Iterator[tuple[int, list[str] | str]]:
    """(byte offset of the record, its fields) for every data record after the header; a
    record csv cannot read is given as its error message."""
    header, body = _csv_header(file, fmt)
    with file.open("rb") as handle:
        start = body if offset is None else offset
        handle.seek(start)
        lines = _Lines(handle, start)
        reader = csv.reader(lines, delimiter="\t" if fmt == "tsv" else ",")
        while True:
            at = lines.offset
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield at, f"malformed CSV record ({exc})"
                continue
            if not record:
                continue  # a blank line is no row (as pandas reads it)
            yield at, record


def _json_lines(file: Path, fmt: str, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    with file.open("rb") as handle:
        handle.seek(offset)
        at = offset
        for line in handle:
            if line.strip():
                yield at, line
            at += len(line)


def _parquet_file(file: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(file)
    except (OSError, ValueError) as exc:
        raise DocsortError(f"cannot read {file}: {str(exc).splitlines()[0]}") from None


def read_shard(shard: Shard, wanted: list[str] = ()) -> tuple[Any, dict[int, str]]:
    """A shard's rows as a DataFrame (with their positions in the column ``_ROW``), and the
    rows that could not be read at all (position → error). JSON lines have no header: a
    ``wanted`` column no record of the shard has is an empty one, not a missing one."""
    import pandas as pd

    file = Path(shard.file)
    errors: dict[int, str] = {}
    if shard.format == "parquet":
        frame = _parquet_rows(file, shard.start, shard.count)
        frame[_ROW] = range(shard.first_row, shard.first_row + len(frame))
        return frame, errors
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    if shard.format in ("csv", "tsv"):
        header, _ = _csv_header(file, shard.format)
        source: Iterator[Any] = _csv_records(file, shard.format, shard.offset)
    else:
        header, source = [], _json_lines(file, shard.format, shard.offset)
    for k, (_, item) in zip(range(shard.count), source, strict=False):
        position = shard.first_row + k
        record, error = _parse(item, header, shard.format)
        if error:
            line = shard.start + k + 1
            errors[position] = f"{file.name} row {line}: {error}"
            continue
        records.append(record)  # type: ignore[arg-type]
        positions.append(position)
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    if shard.format == "jsonl":
        for name in wanted:
            if name not in frame.columns:
                frame[name] = None
    frame[_ROW] = positions
    return frame, errors


def _parse(item: Any, header: list[str], fmt: str) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(item, str):  # csv could not read the record
        return None, item
    if fmt in ("csv", "tsv"):
        if len(item) != len(header):
            return None, f"malformed row: {len(item)} field(s), the header has {len(header)}"
        return {name: value or None for name, value in zip(header, item, strict=True)}, None
    try:
        value = json.loads(item)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON ({getattr(exc, 'msg', exc)})"
    if not isinstance(value, dict):
        return None, "expected a JSON object"
    return value, None


def _parquet_rows(file: Path, start: int, count: int) -> Any:
    handle = _parquet_file(file)
    groups, first, seen = [], None, 0
    for g in range(handle.metadata.num_row_groups):
        n = handle.metadata.row_group(g).num_rows
        if seen + n > start and seen < start + count:
            groups.append(g)
            first = seen if first is None else first
        seen += n
    table = handle.read_row_groups(groups)
    return table.slice(start - (first or 0), count).to_pandas()


# --------------------------------------------------------------------------- predicting


class ShardPredictor:
    """The model opened once (per process, per Ray actor, per Spark Python worker) and what
    predicting a shard needs; ``predictor(shard)`` reads, predicts and writes one shard and
    returns its record."""

    def __init__(self, spec: PredictorSpec) -> None:
        global _MODEL_LOADS
        _MODEL_LOADS += 1
        self.spec = spec
        labels = read_labels(spec.labels)
        self.labels = labels
        self.model: Classifier = _model_of(spec.model, labels, spec.runtime)
        self.model.long_doc_ = long_doc_for(self.model, spec.long_doc, current=self.model.long_doc_)
        self.columns = spec.columns.or_trained(self.model.input_spec_)
        given = self.columns
        self.wanted = [*(given.text or ("text",)), *given.keep]
        self.wanted += [c for c in (given.pair, given.context) if c]
        self.scores = self.model.capabilities().scores
        self.fields = ["score"] if self.scores else list(self._probe()[0])

    def _probe(self) -> list[dict]:
        return predict(
            self.model,
            ["docsort"],
            labels=self.labels,
            top_k=self.spec.top_k,
            at_least_one=self.spec.at_least_one,
        )

    def __call__(self, task: dict[str, Any] | Shard) -> dict[str, Any]:
        shard = task if isinstance(task, Shard) else Shard(**task)
        started = time.perf_counter()
        frame, unreadable = read_shard(shard, self.wanted)
        rows = predict_frame(self, frame)
        for position, error in unreadable.items():
            rows.append(self._failed(position, error, {}))
        rows.sort(key=lambda r: r["row"])
        return write_shard(self, shard, rows, time.perf_counter() - started)

    def _failed(self, position: int, error: str, kept: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"row": position}
        row.update({k: _plain(kept.get(k)) for k in self.columns.keep})
        row.update(dict.fromkeys(self.fields))
        row["error"] = error
        return row


def predict_frame(predictor: ShardPredictor, frame: Any) -> list[dict[str, Any]]:
    """The one prediction function of every engine: a pandas batch of input rows (with their
    positions in ``__docsort_row__``) → one output row each: ``row``, the ``--keep`` columns,
    the prediction (the fields ``docsort predict`` writes) and ``error`` (``None``, or why the
    row has no prediction: a missing column, an empty text, the model's own error)."""
    columns = predictor.columns
    keep = list(columns.keep)
    if len(frame) == 0:
        return []
    positions = [int(p) for p in frame[_ROW]]
    kept_cells = {k: list(frame[k]) if k in frame.columns else [None] * len(frame) for k in keep}

    def failed_all(error: str) -> list[dict[str, Any]]:
        return [
            predictor._failed(p, error, {k: kept_cells[k][i] for k in keep})
            for i, p in enumerate(positions)
        ]

    text = list(columns.text or ("text",))
    try:
        data = from_frame(
            frame,
            text=text[0] if len(text) == 1 else text,
            label=None,
            template=columns.template,
            keep=[*keep, _ROW],
            pair=columns.pair,
            context=columns.context,
            name="the shard",
        )
    except DocsortError as exc:
        message = str(exc).removeprefix("the shard: ")
        return failed_all("empty text" if message.startswith("no rows with text") else message)
    data, _ = redact_like_training(predictor.model, data)  # as docsort predict reads it
    done = {int(p) for p in data.extra[_ROW]}
    rows = [
        predictor._failed(p, "empty text", {k: kept_cells[k][i] for k in keep})
        for i, p in enumerate(positions)
        if p not in done
    ]
    outputs = _predict_rows(predictor, data)
    for i, output in enumerate(outputs):
        row: dict[str, Any] = {"row": int(data.extra[_ROW][i])}
        row.update({k: _plain(data.extra[k][i]) for k in keep})
        if isinstance(output, str):
            row.update(dict.fromkeys(predictor.fields))
            row["error"] = output
        else:
            row.update({f: output.get(f) for f in predictor.fields})
            row["error"] = None
        rows.append(row)
    return rows


def _predict_rows(predictor: ShardPredictor, data: Dataset) -> list[dict[str, Any] | str]:
    """Predictions for all rows of ``data``; if the batch fails, row by row, so that only the
    rows the model cannot take fail (each with its error)."""

    def run(part: Dataset) -> list[dict[str, Any]]:
        return predict(
            predictor.model,
            part if predictor.scores else part.texts,
            labels=predictor.labels,
            top_k=predictor.spec.top_k,
            at_least_one=predictor.spec.at_least_one,
        )

    try:
        return list(run(data))
    except Exception:  # noqa: BLE001 - isolated below, each row with its own error
        pass
    outputs: list[dict[str, Any] | str] = []
    for i in range(len(data)):
        try:
            outputs.append(run(data.subset([i]))[0])
        except Exception as exc:  # noqa: BLE001 - the row is written with its error
            message = " ".join(str(exc).split()) or type(exc).__name__
            outputs.append(f"the model failed on this row: {message[:300]}")
    return outputs


def _plain(value: Any) -> Any:
    """A table cell as a plain value: numpy scalars unwrapped, NaN / NA / NaT as ``None``."""
    import numpy as np
    import pandas as pd

    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def output_schema(predictor: ShardPredictor, rows: list[dict[str, Any]]) -> Any:
    """The Arrow schema of a shard: ``row``, the kept columns (as their values come),
    the prediction fields, ``error``."""
    import pyarrow as pa

    types = {
        "label": pa.string(),
        "labels": pa.list_(pa.string()),
        "confidence": pa.float64(),
        "probabilities": pa.map_(pa.string(), pa.float64()),
        "stage": pa.string(),
        "score": pa.float64(),
    }
    fields = [pa.field("row", pa.int64())]
    for name in predictor.columns.keep:
        try:
            kind = pa.array([r[name] for r in rows]).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kind = pa.string()
        fields.append(pa.field(name, kind))
    fields += [pa.field(f, types.get(f, pa.string())) for f in predictor.fields]
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields)


def write_shard(
    predictor: ShardPredictor, shard: Shard, rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """Write a shard's rows (atomically), then its record: the shard counts as done only
    once both are on disk and agree."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from docsort.io import atomic_path

    out = Path(predictor.spec.out)
    schema = output_schema(predictor, rows)
    columns = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if f.name == "probabilities":
            values = [None if v is None else list(v.items()) for v in values]
        if pa.types.is_string(f.type) and f.name in predictor.columns.keep:
            values = [None if v is None else str(v) for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    table = pa.table(columns, schema=schema)
    target = out / f"{shard.name}.parquet"
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
    digest, size = _sha256(target)
    errors = [{"row": r["row"], "error": r["error"]} for r in rows if r["error"] is not None]
    record = {
        "id": shard.id,
        "file": shard.file,
        "rows": len(rows),
        "failed": len(errors),
        "errors": errors[:LISTED_ERRORS],
        "sha256": digest,
        "bytes": size,
        "seconds": round(seconds, 4),
        "first_row": shard.first_row,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "model_loads": _MODEL_LOADS,
    }
    write_json(out / RECORDS / f"{shard.name}.json", record)
    return record


def _verified_record(out: Path, shard: Shard) -> ShardReport | None:
    """The shard's record if it and the shard's file agree (size, SHA-256, row count)."""
    path = out / RECORDS / f"{shard.name}.json"
    target = out / f"{shard.name}.parquet"
    if not path.is_file() or not target.is_file():
        return None
    try:
        record = ShardReport(**_read_json(path))
    except (TypeError, DocsortError):
        return None
    if record.id != shard.id or record.rows != shard.count:
        return None
    if target.stat().st_size != record.bytes or _sha256(target)[0] != record.sha256:
        return None
    return record


def read_output(out: str | Path) -> list[dict[str, Any]]:
    """All rows of a finished batch folder in input order, as ``docsort predict`` writes them
    (probabilities as a mapping)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in sorted(Path(out).glob("part-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            if isinstance(row.get("probabilities"), list):
                row["probabilities"] = dict(row["probabilities"])
            rows.append(row)
    rows.sort(key=lambda r: r["row"])
    return rows


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocsortError(
            f"{path}: cannot be read ({exc}); remove the folder to start over"
        ) from None
    if not isinstance(data, dict):
        raise DocsortError(f"{path}: not a docsort batch manifest")
    return data


def _file_stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _model_stamp(model: str) -> dict[str, Any]:
    manifest = Path(model) / "docsort.yaml"
    if manifest.is_file():
        return {"path": model, "sha256": _sha256(manifest)[0]}
    return {"spec": model}


def _what_differs(old: dict[str, Any], new: dict[str, Any]) -> str:
    names = {"inputs": "inputs", "model": "model", "predictor": "options", "shard_rows": "shards"}
    differ = [names.get(k, k) for k in new if old.get(k) != new.get(k)]
    return " and ".join(differ) or "settings"


def default_concurrency(cpus: float, per_actor: float) -> int:
    """Actors that fit ``cpus`` at ``per_actor`` CPUs each (at least one)."""
    return max(1, int(cpus // per_actor))


__all__ = [
    "ENGINES",
    "PARTIAL_EXIT",
    "BatchJob",
    "BatchRequest",
    "BatchResult",
    "PredictorSpec",
    "Shard",
    "ShardPredictor",
    "ShardReport",
    "expand_inputs",
    "plan_shards",
    "predict_frame",
    "prepare_batch",
    "read_output",
    "read_shard",
    "write_shard",
]
