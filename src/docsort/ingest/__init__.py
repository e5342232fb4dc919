"""Real documents in: text out of PDF, Office files, spreadsheets, HTML, text, RTF and e-mail.

- ``detect`` (``detect.py``): a file's type from its content (magic bytes, the parts of a zip,
  the streams of an OLE file), not its name.
- ``extract_bytes`` / ``extract_file`` (``extract.py``): the registered extractor for that type
  (``formats.py``, ``pdf.py``, ``mail.py``; OCR in ``ocr.py``); failures become one-line reasons.
- ``run_jobs`` (``pool.py``): many files on worker processes, each file within ``Limits``
  (bytes, pages, seconds, memory).

``docsort.api.ingest`` builds ``docsort ingest`` on these; nothing here imports the API.
"""

from docsort.ingest.detect import Detected, detect
from docsort.ingest.extract import (
    EXTRACTORS,
    Extracted,
    Limits,
    Unreadable,
    extract_bytes,
    register_extractor,
)
from docsort.ingest.pool import Done, extract_file, run_jobs

__all__ = [
    "EXTRACTORS",
    "Detected",
    "Done",
    "Extracted",
    "Limits",
    "Unreadable",
    "detect",
    "extract_bytes",
    "extract_file",
    "register_extractor",
    "run_jobs",
]
