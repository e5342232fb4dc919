"""Read data from wherever users keep it: CSV, TSV, JSONL, Parquet, a folder, a built-in set.

``load_dataset`` is the one entry point the CLI and API use. A source is a path or
``builtin:NAME[:split]``; ``-`` reads one document per line from standard input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from docsort import registry
from docsort.data.dataset import Dataset, from_frame
from docsort.data.labels import LabelSet
from docsort.errors import DocsortError

Reader = Callable[[Path], pd.DataFrame]
READERS: dict[str, Reader] = {}  # file suffix -> reader; see register_reader
TEXT_SUFFIXES = {".txt", ".text", ".md"}
# files of a folder read by docsort.ingest's extractors (the type is still decided by content)
DOCUMENT_SUFFIXES = {
    ".pdf", ".docx", ".pptx", ".xlsx", ".xlsm", ".xls", ".ods", ".html", ".htm", ".rtf",
    ".eml", ".msg",
}  # fmt: skip


def read_table(source: str | Path) -> pd.DataFrame:
    """Read any supported source into a DataFrame (a folder gives ``text``, ``label``, ``path``)."""
    source = str(source)
    if source.startswith("builtin:"):
        from docsort.data.builtin import load_builtin, parse_spec

        name, split = parse_spec(source)
        return load_builtin(name, split)
    if source == "-":
        lines = [line.rstrip("\n") for line in sys.stdin]
        return pd.DataFrame({"text": [line for line in lines if line.strip()]})
    path = Path(source)
    if not path.exists():
        raise DocsortError(f"file not found: {path}")
    if path.is_dir():
        return _read_folder(path)
    suffix = path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise DocsortError(
            f"cannot read {path}: unknown file type {suffix or '(none)'}; "
            f"use one of {', '.join(sorted(READERS))} or a folder"
        )
    try:
        return reader(path)
    except DocsortError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DocsortError(f"cannot read {path}: {reason}") from None


def write_table(frame: pd.DataFrame, path: Path, suffix: str | None = None) -> None:
    """``frame`` in the format ``suffix`` (default: the path's) names (csv, tsv, jsonl, json,
    parquet): what ``read_table`` reads back. The caller makes the write atomic (its temporary
    file's name then does not end as the target's: pass the target's suffix)."""
    suffix = (suffix or path.suffix).lower()
    if suffix in (".tsv", ".tab"):
        frame.to_csv(path, sep="\t", index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".json":
        frame.to_json(path, orient="records", force_ascii=False, indent=1)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def register_reader(*suffixes: str) -> Callable[[Reader], Reader]:
    """Decorator: read files ending in ``suffixes`` (``".csv"``) with the decorated function,
    which takes a path and returns a DataFrame. The extension point for a new file format
    (ingestion of PDF or e-mail plugs in here); a suffix can have one reader only."""

    def wrap(reader: Reader) -> Reader:
        for suffix in suffixes:
            registry.add(READERS, suffix, reader, "a reader for")
        return reader

    return wrap


# only an empty cell is missing: a label that reads "NA", "None" or "null" is a label
@register_reader(".csv")
def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


@register_reader(".tsv", ".tab")
def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])


@register_reader(".parquet", ".pq")
def _read_parquet(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


@register_reader(".jsonl", ".ndjson")
def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DocsortError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DocsortError(f"{path} line {number}: expected a JSON object per line")
            records.append(record)
    return pd.DataFrame.from_records(records)


@register_reader(".json")
def _read_json(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DocsortError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DocsortError(f"{path}: expected a JSON list of objects (or use .jsonl)")
    return pd.DataFrame.from_records(data)


def _read_text_file(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_folder(path: Path) -> pd.DataFrame:
    """``<label>/<file>.txt`` gives labelled rows; text files right inside give unlabelled ones.
    Documents (PDF, Office, spreadsheets, HTML, e-mail: ``DOCUMENT_SUFFIXES``) are read as
    ``docsort ingest`` reads them, on worker processes within its default limits; one that
    cannot be read has no text, so its row is skipped and counted like an empty file."""
    rows = []
    documents: list[tuple[int, str]] = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        suffix = file.suffix.lower()
        if file.name.startswith(".") or suffix not in TEXT_SUFFIXES | DOCUMENT_SUFFIXES:
            continue
        relative = file.relative_to(path)
        label = relative.parts[0] if len(relative.parts) > 1 else None
        text = _read_text_file(file) if suffix in TEXT_SUFFIXES else ""
        if suffix not in TEXT_SUFFIXES:
            documents.append((len(rows), str(file)))
        rows.append({"text": text, "label": label, "path": str(relative)})
    if not rows:
        raise DocsortError(
            f"{path}: no .txt or document files found (expected <label>/<file>.txt, .pdf, ...)"
        )
    if documents:
        from docsort.ingest import Limits, run_jobs

        for done in run_jobs(documents, Limits(), max(1, min(4, len(documents)))):
            rows[done.key]["text"] = done.result.text if not done.result.error else ""
    frame = pd.DataFrame(rows)
    if frame["label"].isna().all():
        frame = frame.drop(columns="label")
    return frame


def load_dataset(
    source: str | Path,
    text: str | Sequence[str] | None = None,
    label: str | None = "label",
    *,
    template: str | None = None,
    labels: LabelSet | None = None,
    label_sep: str | None = None,
    strict: bool = False,
    keep: Sequence[str] = (),
    pair: str | None = None,
    context: str | None = None,
) -> Dataset:
    """Load ``source`` as a ``Dataset``. ``label=None`` loads texts only (for prediction);
    ``pair`` and ``context`` name the second text and context columns of pair tasks."""
    frame = read_table(source)
    name = str(source)
    return from_frame(
        frame,
        text=text or "text",
        label=label,
        template=template,
        labels=labels,
        label_sep=label_sep,
        strict=strict,
        name=name,
        keep=keep,
        pair=pair,
        context=context,
    )


def split_columns(value: str | None) -> str | list[str] | None:
    """CLI helper: ``"title,abstract"`` → ``["title", "abstract"]``."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts
