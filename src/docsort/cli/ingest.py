"""``docsort ingest``: folders of PDF, Office, HTML and e-mail files into one table of texts."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from docsort.api.ingest import MAX_LISTED, IngestRequest, run_ingest
from docsort.cli.app import err_console, out_console

REDACT_HELP = (
    "Take personal data out of the texts first: replace (<EMAIL_ADDRESS>), mask (***), hash "
    "(<PERSON_3f9a0c1d2e>, keyed by $DOCSORT_REDACT_KEY, the same in every document) or drop."
)
REDACT_ENTITIES_HELP = (
    "Entity types to redact, comma-separated (default: EMAIL_ADDRESS, PHONE_NUMBER, IBAN_CODE, "
    "CREDIT_CARD, IP_ADDRESS, URL, US_SSN, UK_NINO, DATE_OF_BIRTH, PASSPORT, PERSON)."
)
REDACT_ENGINE_HELP = (
    "presidio: the spaCy English pipeline finds names, patterns the rest; patterns: patterns "
    "only (no model, ~10x faster, no PERSON)."
)
PARTIAL_EXIT = 3  # some files could not be read (listed); the rest were written

HELP = f"""Extract the text of documents into one table (.parquet or .jsonl), one row per file.

Reads PDF (text layer; scanned pages by OCR when tesseract is installed), DOCX, PPTX, XLSX,
XLS, ODS, HTML, TXT/MD, RTF, EML and Outlook MSG, by content (a PDF named .txt is a PDF).
Columns: path, sha256, type, bytes, pages, chars, language, ocr_pages, text, error, note (+
label, + redacted).
Files whose content is already in --out are skipped, so a rerun resumes; the same content
twice is written once. An unreadable file (encrypted, corrupt, empty, over a limit,
unsupported) gets its reason in the error column and the run goes on.

Exit status: 0 every file read, {PARTIAL_EXIT} some could not be (listed), 2 a usage error.

Then: docsort train docs.parquet --out model (with --labels-from-folders)."""


def ingest(
    paths: list[str] = typer.Argument(..., help="Files, folders (read recursively) or globs."),
    out: Path = typer.Option(..., "--out", help="The table to write: .parquet or .jsonl."),
    labels_from_folders: bool = typer.Option(
        False,
        "--labels-from-folders",
        help="A label column: the name of each file's folder (spam/x.eml → spam).",
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Worker processes (default: the CPUs available, at most 8)."
    ),
    max_mb: float = typer.Option(
        IngestRequest.max_mb, "--max-mb", help="Skip larger files (MB), unopened."
    ),
    max_pages: int = typer.Option(
        IngestRequest.max_pages,
        "--max-pages",
        help="Refuse documents with more pages/slides/sheets.",
    ),
    max_seconds: float = typer.Option(
        IngestRequest.max_seconds,
        "--max-seconds",
        help="Stop the extraction of one file after this many seconds.",
    ),
    max_chars: int = typer.Option(
        IngestRequest.max_chars, "--max-chars", help="Cut longer texts (noted in the row)."
    ),
    max_memory_mb: int = typer.Option(
        IngestRequest.max_memory_mb,
        "--max-memory-mb",
        help="Address space of each worker (MB); a file needing more fails alone. 0: no cap.",
    ),
    ocr: bool = typer.Option(
        True, "--ocr/--no-ocr", help="Read scanned pages with tesseract when it is installed."
    ),
    retry_errors: bool = typer.Option(
        False, "--retry-errors", help="Extract again the files whose rows in --out have an error."
    ),
    hidden: bool = typer.Option(
        False, "--hidden", help="Also read files and folders whose names start with a dot."
    ),
    redact: str | None = typer.Option(None, "--redact", help=REDACT_HELP),
    redact_entities: str | None = typer.Option(
        None, "--redact-entities", help=REDACT_ENTITIES_HELP
    ),
    redact_engine: str = typer.Option("presidio", "--redact-engine", help=REDACT_ENGINE_HELP),
) -> None:
    request = IngestRequest(
        paths=list(paths),
        out=out,
        labels_from_folders=labels_from_folders,
        workers=workers,
        max_mb=max_mb,
        max_pages=max_pages,
        max_seconds=max_seconds,
        max_chars=max_chars,
        max_memory_mb=max_memory_mb,
        ocr=ocr,
        retry_errors=retry_errors,
        hidden=hidden,
        redact=redact,
        redact_entities=redact_entities.split(",") if redact_entities else None,
        redact_engine=redact_engine,
    )
    result = run_ingest(request)
    for failure in result.failures[:MAX_LISTED]:
        err_console.print(
            f"[yellow]{escape(failure.path)}: {escape(failure.reason)}[/yellow]",
            highlight=False,
            soft_wrap=True,
        )
    if len(result.failures) > MAX_LISTED:
        err_console.print(
            f"[yellow]... and {len(result.failures) - MAX_LISTED:,} more (the error column of "
            f"{escape(str(out))})[/yellow]",
            highlight=False,
        )
    out_console.print(escape(result.summary()), highlight=False, soft_wrap=True)
    if result.partial:
        raise typer.Exit(PARTIAL_EXIT)


ingest.__doc__ = HELP
