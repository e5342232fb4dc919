"""Text out of one file: its type detected from content, then the extractor registered for it.

``extract_bytes(data, name, limits)`` runs in a worker process (see ``docsort.ingest.pool``,
which enforces the time limit by killing it); an ``Unreadable`` raised by an extractor, or
any other exception, becomes the row's ``error``: one line, never a traceback.

Extractors (``@register_extractor("pdf")``) take the file's bytes and a ``Context`` (limits,
notes, the nesting depth of e-mail attachments) and return a ``Part``: the text and the number
of pages (PDF pages, slides, sheets; 1 for the rest).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docsort import registry
from docsort.ingest.detect import Detected, detect

MB = 2**20


@dataclass(frozen=True)
class Limits:
    """What one file may cost. A file over ``max_bytes`` is never opened; a document with more
    than ``max_pages`` pages (slides, sheets) is refused; a file that takes longer than
    ``max_seconds`` has its worker killed; ``max_memory_mb`` bounds a worker's address space
    (a decompression bomb stops there); texts are cut at ``max_chars``."""

    max_bytes: int = 100 * MB
    max_pages: int = 2000
    max_seconds: float = 60.0
    max_chars: int = 2_000_000
    max_memory_mb: int = 4096
    max_unpacked_mb: int = 1024  # what the parts of a zip container (DOCX, XLSX...) may unpack to
    max_cells: int = 2_000_000  # spreadsheet cells read, all sheets together
    max_depth: int = 3  # e-mail attachments within attachments
    ocr: bool = True  # OCR image-only PDF pages and images when tesseract is installed
    ocr_dpi: int = 200
    ocr_lang: str = "eng"


class Unreadable(Exception):
    """A file the extractor cannot read, with the reason the user sees (one line)."""


@dataclass
class Part:
    text: str
    pages: int = 1


@dataclass
class Context:
    limits: Limits
    notes: list[str] = field(default_factory=list)
    depth: int = 0
    ocr_pages: int = 0

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)


@dataclass
class Extracted:
    """One file's result, as the worker sends it back."""

    type: str | None
    text: str = ""
    pages: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)
    ocr_pages: int = 0
    redacted: dict[str, int] = field(default_factory=dict)  # entity type -> count
    language: str = ""  # ISO 639-1, "" when not told


Extractor = Callable[[bytes, Context], Part]
EXTRACTORS: dict[str, Extractor] = {}


def register_extractor(*types: str) -> Callable[[Extractor], Extractor]:
    """Decorator: extract files detected as ``types`` with the decorated function."""

    def wrap(extractor: Extractor) -> Extractor:
        for name in types:
            registry.add(EXTRACTORS, name, extractor, "an extractor for")
        return extractor

    return wrap


def extract_bytes(data: bytes, name: str, limits: Limits) -> Extracted:
    """Detect and extract; every failure is a one-line ``error``."""
    context = Context(limits)
    detected = detect(data, Path(name))
    if detected.note:
        context.note(detected.note)
    if detected.type is None:
        return Extracted(None, error=detected.reason, notes=context.notes)
    try:
        part = extract_part(data, detected, context)
    except Unreadable as exc:
        return Extracted(detected.type, error=str(exc), notes=context.notes)
    except MemoryError:
        return Extracted(
            detected.type,
            error=f"ran out of memory (over {limits.max_memory_mb} MB; --max-memory-mb)",
            notes=context.notes,
        )
    except RecursionError:
        return Extracted(detected.type, error="nested too deeply to read", notes=context.notes)
    except Exception as exc:  # a library's own error on a damaged file: one line, no traceback
        return Extracted(
            detected.type,
            error=f"cannot be read as {detected.type}: {describe(exc)}",
            notes=context.notes,
        )
    text = tidy(part.text)
    if len(text) > limits.max_chars:
        text = text[: limits.max_chars]
        context.note(f"text cut to its first {limits.max_chars:,} characters (--max-chars)")
    error = ""
    if not text.strip():
        error = context.notes.pop() if context.notes and "OCR" in context.notes[-1] else "no text"
    extracted = Extracted(detected.type, text, part.pages, error, context.notes, context.ocr_pages)
    extracted.language = language_of(text)
    return extracted


LANGUAGE_CHARS = 4000  # enough text to tell the language; more only costs time
MIN_LANGUAGE_CHARS = 40
MIN_LANGUAGE_PROBABILITY = 0.8


def language_of(text: str) -> str:
    """The ISO 639-1 code of the text's language (py3langid, 97 languages, a model inside its
    wheel), or "" when the text is too short, the guess is unsure, or py3langid is missing."""
    sample = text[:LANGUAGE_CHARS]
    if sum(c.isalpha() for c in sample) < MIN_LANGUAGE_CHARS:
        return ""
    identifier = _language_identifier()
    if identifier is None:
        return ""
    code, probability = identifier.classify(sample)
    return str(code) if probability >= MIN_LANGUAGE_PROBABILITY else ""


_IDENTIFIER: list = []


def _language_identifier():  # noqa: ANN202 (py3langid's LanguageIdentifier, loaded once)
    if not _IDENTIFIER:
        try:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _IDENTIFIER.append(LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True))
        except ImportError:
            _IDENTIFIER.append(None)
    return _IDENTIFIER[0]


def extract_part(data: bytes, detected: Detected, context: Context) -> Part:
    """The text of ``data`` (already detected); attachments call this again, one level deeper."""
    assert detected.type is not None
    extractor = EXTRACTORS.get(detected.type)
    if extractor is None:
        raise Unreadable(f"no extractor for {detected.type} files")
    return extractor(data, context)


def check_pages(pages: int, context: Context, what: str = "pages") -> None:
    if pages > context.limits.max_pages:
        raise Unreadable(
            f"has {pages:,} {what}, over the limit of {context.limits.max_pages:,} (--max-pages)"
        )


def check_zip(data: bytes, context: Context) -> None:
    """Refuse a zip container whose parts unpack to more than ``max_unpacked_mb``, or that
    squeezes them more than any document would (a zip bomb), before a library opens it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise Unreadable(f"a damaged zip container ({describe(exc)})") from None
    unpacked = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos) or 1
    if unpacked > context.limits.max_unpacked_mb * MB:
        raise Unreadable(
            f"unpacks to {unpacked / MB:,.0f} MB, over the limit of "
            f"{context.limits.max_unpacked_mb:,} MB (--max-unpacked-mb)"
        )
    if unpacked > 50 * MB and unpacked / packed > 200:
        raise Unreadable(f"a zip bomb: {packed:,} bytes unpack to {unpacked:,}")


_SPACES = re.compile(r"[ \t\u00a0]+\n")
_BLANKS = re.compile(r"\n{3,}")


def tidy(text: str) -> str:
    """Line ends unified, trailing spaces and runs of blank lines removed, NULs dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _SPACES.sub("\n", text)
    return _BLANKS.sub("\n\n", text).strip()


def describe(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    message = str(exc).strip()
    first = message.splitlines()[0][:200] if message else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def decode_text(data: bytes) -> str:
    """Bytes of unknown encoding as text: a BOM, UTF-8, then charset-normalizer's best guess,
    then Latin-1 (which never fails)."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[: 4 * MB]).best()
        if best is not None and best.encoding:
            return data.decode(best.encoding, errors="replace")
    except (ImportError, LookupError):
        pass
    return data.decode("latin-1")


# the extractors register themselves on import
from docsort.ingest import formats, mail, pdf  # noqa: E402,F401
