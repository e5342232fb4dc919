"""OCR of scanned pages with Tesseract (Debian's ``tesseract-ocr``) through ``pytesseract``.

Tesseract is optional: ``available()`` says whether its program runs here. It is found as
``$DOCSORT_TESSERACT`` (a path or a command name), else ``tesseract`` on the PATH; without it
image-only pages are reported as needing OCR instead of being read.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Any

MISSING = "tesseract is not installed (apt-get install tesseract-ocr, or set $DOCSORT_TESSERACT)"
PAGE_SECONDS = 120  # tesseract's own limit per page; the file's limit is the worker's


def command() -> str:
    return os.environ.get("DOCSORT_TESSERACT", "").strip() or "tesseract"


@functools.cache
def _runs(cmd: str) -> bool:
    path = shutil.which(cmd)
    if path is None:
        return False
    try:
        done = subprocess.run([path, "--version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def available() -> bool:
    """Whether tesseract runs here (checked once per command per process)."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return _runs(command())


def image_to_text(image: Any, limits: Any) -> str:
    """The text of a PIL image; tesseract's failures as ``Unreadable``."""
    import pytesseract

    from docsort.ingest.extract import Unreadable

    pytesseract.pytesseract.tesseract_cmd = shutil.which(command()) or command()
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    try:
        return pytesseract.image_to_string(image, lang=limits.ocr_lang, timeout=PAGE_SECONDS)
    except RuntimeError as exc:  # pytesseract's timeout
        raise Unreadable(f"OCR of a page took over {PAGE_SECONDS} s") from exc
    except pytesseract.TesseractError as exc:
        message = str(exc.message).strip().splitlines()
        raise Unreadable(f"OCR failed: {message[-1][:200] if message else exc.status}") from None
