"""Ingestion: folders of real documents (PDF, Office, HTML, e-mail, ...) into one table.

``IngestRequest`` holds what ``docsort ingest`` takes; ``run_ingest`` walks the paths, skips
files whose content is already in ``out`` (a rerun resumes), extracts the rest on worker
processes within per-file limits (``docsort.ingest``), drops duplicates by content hash and
writes one row per document, atomically (and every ``checkpoint_seconds`` while it runs, so a
killed run loses little). Every unreadable file is a row with its ``error``; nothing raises
for a bad file. The result's ``failed`` makes the CLI's exit status 3 (partial success).

Rows: ``path, sha256, type, bytes, pages, chars, language, ocr_pages, text, error, note``
(+ ``label`` with ``labels_from_folders``: the name of the file's folder; + ``redacted``, the
counts per entity type, with ``redact``). ``docsort train docs.parquet`` reads it as it is:
rows with an error have no text and are skipped.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsort.api.redaction import counts_line, redact_spec
from docsort.errors import DocsortError
from docsort.ingest import Done, Extracted, Limits, run_jobs
from docsort.ingest.detect import detect
from docsort.ingest.extract import MB, extract_bytes
from docsort.io import atomic_path
from docsort.models.base import is_number
from docsort.progress import progress_bar

COLUMNS = (
    "path",
    "sha256",
    "type",
    "bytes",
    "pages",
    "chars",
    "language",
    "ocr_pages",
    "text",
    "error",
    "note",
)
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
GLOB_CHARS = set("*?[")
MAX_LISTED = 20  # failures the summary names; the rest are in the output's error column


@dataclass
class IngestRequest:
    """Extract ``paths`` (files, folders, globs) into ``out`` (.parquet or .jsonl)."""

    paths: list[str | Path]
    out: str | Path
    labels_from_folders: bool = False
    workers: int | None = None  # default: the CPUs this process may use, at most 8
    max_mb: float = Limits.max_bytes / MB
    max_pages: int = Limits.max_pages
    max_seconds: float = Limits.max_seconds
    max_chars: int = Limits.max_chars
    max_memory_mb: int = Limits.max_memory_mb
    ocr: bool = True
    retry_errors: bool = False  # extract again the files whose rows in ``out`` have an error
    hidden: bool = False  # also files and folders whose names start with "."
    checkpoint_seconds: float = 60.0
    redact: str | None = None  # a mode (replace, mask, hash, drop): personal data out
    redact_entities: list[str] | None = None  # default: docsort.redact.DEFAULT_ENTITIES
    redact_engine: str = "presidio"  # or "patterns": no NLP model, no names


@dataclass
class Failure:
    path: str
    reason: str


@dataclass
class IngestResult:
    out: Path
    found: int = 0  # files the paths named
    extracted: int = 0  # new rows with text
    failed: int = 0  # new rows with an error
    failed_before: int = 0  # skipped as done, but their rows have an error
    done_before: int = 0  # skipped: their content was already in ``out``
    duplicates: int = 0  # skipped: the same content as another file of this run
    rows: int = 0  # rows in ``out`` now
    bytes: int = 0  # bytes of the files extracted in this run
    seconds: float = 0.0
    by_type: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    ocr_pages: int = 0
    redacting: bool = False
    redacted: Counter = field(default_factory=Counter)  # entity type -> count, this run

    @property
    def partial(self) -> bool:
        """Some files named are not in the table with text (their rows have an error)."""
        return self.failed + self.failed_before > 0

    def summary(self) -> str:
        """One line: what was found, extracted, skipped and failed, how fast, by type."""
        rate = f"{self.bytes / MB / self.seconds:.1f} MB/s" if self.seconds > 0 else ""
        parts = [
            f"{self.extracted:,} extracted",
            f"{self.failed:,} failed"
            + (f" (+{self.failed_before:,} in an earlier run)" if self.failed_before else ""),
            f"{self.done_before:,} already in {self.out.name}",
            f"{self.duplicates:,} duplicate(s)",
        ]
        line = f"ingested {self.found:,} file(s): " + ", ".join(parts)
        line += f" in {self.seconds:.1f} s ({self.bytes / MB:,.1f} MB{', ' + rate if rate else ''})"
        if self.by_type:
            line += "; " + ", ".join(f"{k} {v:,}" for k, v in self.by_type.most_common())
        if self.ocr_pages:
            line += f"; {self.ocr_pages:,} page(s) read by OCR"
        if self.redacting:
            line += "; " + counts_line(self.redacted)
        return line + f" → {self.out} ({self.rows:,} rows)"


def limits_of(request: IngestRequest) -> Limits:
    """The request's limits, checked: one line per bad value."""
    for name, value, low in (
        ("--max-mb", request.max_mb, 0),
        ("--max-seconds", request.max_seconds, 0),
        ("--max-pages", request.max_pages, 0),
        ("--max-chars", request.max_chars, 0),
        ("--max-memory-mb", request.max_memory_mb, -1),
    ):
        if not is_number(value) or value <= low:
            raise DocsortError(f"{name} must be a positive number, not {value!r}")
    return Limits(
        max_bytes=int(request.max_mb * MB),
        max_pages=int(request.max_pages),
        max_seconds=float(request.max_seconds),
        max_chars=int(request.max_chars),
        max_memory_mb=int(request.max_memory_mb),
        ocr=bool(request.ocr),
    )


def run_ingest(request: IngestRequest) -> IngestResult:
    """Walk, extract what is new, write ``out``; see the module's docstring."""
    started = time.monotonic()
    limits = limits_of(request)
    out = Path(request.out)
    file_format = FORMATS.get(out.suffix.lower())
    if file_format is None:
        raise DocsortError(f"--out must end in .parquet or .jsonl, not {out.name!r}")
    workers = _workers(request.workers)
    spec = redact_spec(request.redact, request.redact_entities, request.redact_engine)
    postprocess = None
    if spec is not None:
        from docsort.ingest.pool import RedactStep, fork_is_safe
        from docsort.redact import Redactor

        redactor = Redactor(spec)
        if fork_is_safe():  # forked workers inherit the loaded engine instead of each loading it
            redactor.load()
        postprocess = RedactStep(redactor)
    if not request.paths:
        raise DocsortError("give one or more files, folders or globs to ingest")
    # rows without a hash (a FIFO, an unreadable file) are listed again if still there
    previous = [row for row in read_output(out, file_format) if row.get("sha256")]
    files = list(walk(request.paths, hidden=request.hidden, skip=out))
    if not files:
        raise DocsortError(
            f"no files found in {', '.join(str(p) for p in request.paths)} "
            "(hidden files are skipped unless --hidden)"
        )
    _same_redaction(out, previous, spec is not None)
    result = IngestResult(out=out, found=len(files), redacting=spec is not None)
    known = {row["sha256"]: i for i, row in enumerate(previous)}
    rows = list(previous)
    jobs: list[tuple[int, str]] = []
    planned: dict[int, dict[str, Any]] = {}
    seen: set[str] = set()
    for path, unreadable in files:
        row = _base_row(path, request.labels_from_folders)
        if unreadable:
            result.failed += 1
            rows.append({**row, "sha256": "", "error": unreadable})
            result.failures.append(Failure(path, unreadable))
            continue
        digest, size, error = _hash(path, limits)
        row.update(sha256=digest, bytes=size)
        if digest in seen:
            result.duplicates += 1
            continue
        seen.add(digest)
        if digest in known:
            earlier = rows[known[digest]]
            before = earlier.get("error") if earlier else ""
            if not (request.retry_errors and before):
                result.done_before += 1
                if before:  # still listed: the table is still missing this file
                    result.failed_before += 1
                    result.failures.append(
                        Failure(path, f"{before} (an earlier run; --retry-errors)")
                    )
                continue
            rows[known[digest]] = None  # replaced by this run's row
        if error:  # over the size limit or unreadable: no worker needed
            _finish(result, rows, row, Extracted(None, error=error))
            continue
        planned[len(jobs)] = row
        jobs.append((len(jobs), path))
    checkpoint = time.monotonic()
    results = run_jobs(jobs, limits, workers, postprocess)  # workers start before the bar
    try:
        with progress_bar("extracting", total=len(jobs)) as advance:
            for done in results:
                _finish(result, rows, planned[done.key], done.result, done)
                advance()
                if time.monotonic() - checkpoint > request.checkpoint_seconds:
                    write_output(out, file_format, rows)
                    checkpoint = time.monotonic()
    finally:  # interrupted too: the workers stop, what is done is kept, a rerun resumes
        results.close()  # type: ignore[attr-defined]  (a generator)
        written = write_output(out, file_format, rows)
    result.rows = written
    result.seconds = time.monotonic() - started
    return result


def _finish(
    result: IngestResult,
    rows: list[dict[str, Any] | None],
    row: dict[str, Any],
    extracted: Extracted,
    done: Done | None = None,
) -> None:
    row.update(
        type=extracted.type or "",
        pages=extracted.pages,
        chars=len(extracted.text),
        language=extracted.language,
        ocr_pages=extracted.ocr_pages,
        text=extracted.text,
        error=extracted.error,
        note="; ".join(extracted.notes),
    )
    if result.redacting:
        row["redacted"] = json.dumps(extracted.redacted, sort_keys=True)
        result.redacted.update(extracted.redacted)
    rows.append(row)
    result.ocr_pages += extracted.ocr_pages
    if extracted.error:
        result.failed += 1
        result.failures.append(Failure(row["path"], extracted.error))
    else:
        result.extracted += 1
        result.by_type[extracted.type or "?"] += 1
        result.bytes += int(row.get("bytes") or 0)


def _same_redaction(out: Path, previous: list[dict[str, Any]], redacting: bool) -> None:
    """A resumed output stays all redacted or all not: new rows must match the old ones."""
    if not previous:
        return
    before = any(row.get("redacted") not in (None, "") for row in previous)
    if before != redacting:
        done = "with --redact" if before else "without --redact"
        raise DocsortError(
            f"{out} was written {done}: resume it the same way, or give a new --out "
            "(one table must not mix redacted and unredacted texts)"
        )


def _base_row(path: str, labels: bool) -> dict[str, Any]:
    row: dict[str, Any] = {c: "" for c in COLUMNS}
    row.update(path=path, bytes=0, pages=0, chars=0, ocr_pages=0)
    if labels:
        row["label"] = Path(os.path.abspath(path)).parent.name  # links are not followed
    return row


def _hash(path: str, limits: Limits) -> tuple[str, int, str]:
    """The file's SHA-256, size, and an error when it cannot be read (or is over the limit:
    its hash is still taken, so a rerun with the same limit skips it as done)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(MB):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        return "", size, f"cannot read the file: {exc.strerror or exc}"
    if size > limits.max_bytes:
        from docsort.ingest.pool import oversize

        return digest.hexdigest(), size, oversize(size, limits)
    return digest.hexdigest(), size, ""


def _workers(workers: int | None) -> int:
    if workers is None:
        try:
            available = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            available = os.cpu_count() or 1
        return max(1, min(available, 8))
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise DocsortError(f"--workers must be a whole number >= 1, not {workers!r}")
    return workers


def walk(
    paths: Iterable[str | Path], hidden: bool = False, skip: Path | None = None
) -> Iterator[tuple[str, str]]:
    """Every file the paths name, once, in a stable order, as (path, reason it cannot be
    read or ""): folders recursively (symlinked folders are not followed), globs expanded
    (``**`` recursive). A FIFO, socket or device is listed with a reason, never opened."""
    seen: set[str] = set()
    skipped = {os.path.realpath(skip)} if skip is not None else set()
    for given in paths:
        text = str(given)
        if not os.path.lexists(text):
            if GLOB_CHARS & set(text):
                matches = sorted(glob.glob(text, recursive=True))
                if not matches:
                    raise DocsortError(f"{text!r} matches no file")
            else:
                raise DocsortError(f"file not found: {text}")
        else:
            matches = [text]
        for match in matches:
            for path in _files_under(match, hidden):
                real = os.path.realpath(path)
                if real in seen or real in skipped or _is_temporary_output(path, skip):
                    continue
                seen.add(real)
                yield path, _not_regular(path)


def _files_under(path: str, hidden: bool) -> Iterator[str]:
    if not os.path.isdir(path):
        yield path
        return
    for root, folders, files in os.walk(path, followlinks=False):
        folders[:] = sorted(f for f in folders if hidden or not f.startswith("."))
        for name in sorted(files):
            if hidden or not name.startswith("."):
                yield os.path.join(root, name)


def _is_temporary_output(path: str, out: Path | None) -> bool:
    """Our own checkpoint's temporary file beside ``out`` (``.NAME.<pid>-<hex>.tmp``)."""
    if out is None:
        return False
    name = os.path.basename(path)
    return name.startswith(f".{out.name}.") and name.endswith(".tmp")


def _not_regular(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return ""
    return "not a regular file (a FIFO, socket or device is not read)"


# ----------------------------------------------------------------------------- the output


def read_output(out: Path, file_format: str) -> list[dict[str, Any]]:
    """The rows of an earlier run's output (to resume from); [] when there is none. A file
    that is not such an output is refused rather than overwritten."""
    if not out.exists():
        return []
    if out.is_dir():
        raise DocsortError(f"--out {str(out)!r} is a folder: give a .parquet or .jsonl file name")
    try:
        if file_format == "parquet":
            import pandas as pd

            records = pd.read_parquet(out).to_dict("records")
        else:
            with out.open(encoding="utf-8") as handle:
                records = [json.loads(line) for line in handle if line.strip()]
    except Exception as exc:  # pyarrow's and json's errors on a file that is not ours
        raise DocsortError(
            f"--out {str(out)!r} exists and cannot be read as an ingest output "
            f"({type(exc).__name__}); give a new file name"
        ) from None
    if records and not all(isinstance(r, dict) and "sha256" in r and "path" in r for r in records):
        raise DocsortError(
            f"--out {str(out)!r} exists and is not an ingest output (no sha256 and path "
            "columns): give a new file name"
        )
    for record in records:
        if "note" in record and record["note"] is None:
            record["note"] = ""
    return records


def write_output(out: Path, file_format: str, rows: list[dict[str, Any] | None]) -> int:
    """Write the rows (``None``: a row replaced by a newer one) atomically; their count."""
    kept = [row for row in rows if row is not None]
    columns = list(COLUMNS)
    extra = sorted({k for row in kept for k in row} - set(columns))
    columns += [c for c in ("label", "redacted") if c in extra]
    columns += [c for c in extra if c not in columns]
    with atomic_path(out) as tmp:
        if file_format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in kept])
            if not kept:
                table = pa.table({c: pa.array([], pa.string()) for c in columns})
            pq.write_table(table, tmp)
        else:
            with tmp.open("w", encoding="utf-8") as handle:
                for row in kept:
                    handle.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
                    handle.write("\n")
    return len(kept)


UPLOAD_LIMITS = Limits(max_bytes=20 * MB, max_seconds=30.0, max_memory_mb=2048)


def extract_upload(data: bytes, name: str, limits: Limits = UPLOAD_LIMITS) -> Extracted:
    """The text of one uploaded file (the web page's PDF or Word upload), extracted as
    ``docsort ingest`` extracts a file: type from its content, in a worker process under the
    same time, memory, page and unpacking limits, so a hostile upload costs a killed worker.
    A file that cannot be read is a ``DocsortError`` naming why."""
    import tempfile

    shown = os.path.basename(name)[:80] or "upload"
    if len(data) > limits.max_bytes:
        raise DocsortError(
            f"{shown}: {len(data) / MB:,.1f} MB, over the {limits.max_bytes / MB:g} MB limit"
        )
    suffix = os.path.splitext(shown)[1].lower()  # a hint only: the type comes from the content
    suffix = suffix if suffix[1:].isalnum() and len(suffix) <= 10 else ""
    if detect(data, Path("upload" + suffix)).type in (None, "text", "md"):
        result = extract_bytes(data, "upload" + suffix, limits)  # decoding only: no parser
    else:  # a parser of a complex format: in a worker, under the limits
        with tempfile.TemporaryDirectory(prefix="docsort-upload-") as folder:
            path = os.path.join(folder, "upload" + suffix)
            with open(path, "wb") as handle:
                handle.write(data)
            (done,) = list(run_jobs([(0, path)], limits, workers=1))
        result = done.result
    if result.error:
        raise DocsortError(f"{shown}: {result.error}")
    if not result.text.strip():
        raise DocsortError(f"{shown}: no text found in this {result.type or 'file'}")
    return result
