"""What a file is, from its first bytes (and, for containers, the names inside), not its name.

A ``.txt`` that is really a PDF is read as a PDF; a ``.pdf`` of random bytes is reported as
not a PDF. ``detect(data, path)`` returns a ``Detected``: the type an extractor is registered
for (``pdf``, ``docx``, ``pptx``, ``xlsx``, ``xls``, ``ods``, ``html``, ``text``, ``md``, ``rtf``,
``eml``, ``msg``, ``image``), or ``None`` with the reason the file cannot be read (an encrypted
Office file, a legacy Word or PowerPoint file, an unknown binary). ``data`` is the whole
file: containers are looked into (the part names of a zip, the streams of an OLE file).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 8192  # what is read to decide; containers (zip, OLE) are opened further

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"BM": "bmp",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}
ODF_TYPES = {
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.presentation": "odp",
}
# the header names an RFC 5322 message starts with (one of them is enough, with the shape)
MAIL_HEADERS = {
    "from", "to", "cc", "subject", "date", "received", "return-path", "message-id",
    "mime-version", "delivered-to", "x-mailer", "reply-to", "sender", "content-type",
    "x-original-to", "envelope-to", "x-spam-status", "in-reply-to", "references",
}  # fmt: skip
_HEADER = re.compile(rb"^([!-9;-~]{1,76}):")  # RFC 5322 field names: printable, no colon
_HTML = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)\b", re.I | re.S
)
MARKDOWN_SUFFIXES = {".md", ".markdown"}
LEGACY = {
    "WordDocument": "a legacy Word .doc file: save it as .docx",
    "PowerPoint Document": "a legacy PowerPoint .ppt file: save it as .pptx",
}
XLS_STREAMS = {"Workbook", "Book"}  # a legacy Excel file: calamine reads it


@dataclass(frozen=True)
class Detected:
    type: str | None  # the extractor to use; None: unreadable, see ``reason``
    reason: str = ""
    note: str = ""  # e.g. the extension says another type


def detect(data: bytes, path: Path) -> Detected:
    """The type of ``data``, the content of the file at ``path`` (whose name gives only notes
    and the text flavour)."""
    found = _detect(data, path)
    expected = _by_suffix(path.suffix.lower())
    if found.type and expected and found.type != expected and not _same_family(found, expected):
        return Detected(
            found.type, found.reason, f"the extension says {expected}, the content is {found.type}"
        )
    return found


def _detect(data: bytes, path: Path) -> Detected:
    head = data[:HEAD_BYTES]
    if not head:
        return Detected(None, "empty file")
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return Detected("pdf")
    if head.startswith(ZIP_MAGIC):
        return _zip_type(data)
    if head.startswith(OLE_MAGIC):
        return _ole_type(data)
    for magic in IMAGE_MAGIC:
        if head.startswith(magic):
            return Detected("image")
    if head.startswith(b"{\\rtf"):
        return Detected("rtf")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte order mark
        return Detected(_text_kind(_decode_head(head), path))
    if b"\x00" in head:
        return Detected(None, "a binary file of unknown type (not a document docsort reads)")
    if _looks_like_mail(head):
        return Detected("eml")
    if _HTML.match(head.lstrip(b"\xef\xbb\xbf")):
        return Detected("html")
    return Detected(_text_kind(head, path))


def _text_kind(head: bytes | str, path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm", ".xhtml"):
        return "html"
    return "md" if suffix in MARKDOWN_SUFFIXES else "text"


def _decode_head(head: bytes) -> str:
    try:
        return head.decode("utf-16")
    except UnicodeDecodeError:
        return ""


def _looks_like_mail(head: bytes) -> bool:
    """Header lines (``Name: value``, continuations indented) up to a blank line, one of them a
    mail header; an mbox ``From `` line may come first (the SpamAssassin corpus has one)."""
    lines = head.splitlines()
    if lines and lines[0].startswith(b"From ") and b":" not in lines[0][:5]:
        lines = lines[1:]
    names = set()
    for line in lines[:60]:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            if not names:
                return False
            continue
        match = _HEADER.match(line)
        if not match:
            return False
        names.add(match.group(1).decode("ascii").lower())
    return len(names & MAIL_HEADERS) >= 2 or (len(names) >= 3 and bool(names & MAIL_HEADERS))


def _zip_type(data: bytes) -> Detected:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                mimetype = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                kind = ODF_TYPES.get(mimetype)
                if kind == "ods":
                    return Detected("ods")
                if kind:
                    return Detected(None, f"an OpenDocument {kind} file (not read yet)")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        return Detected(None, f"a damaged zip container ({_first_line(exc)})")
    if "[Content_Types].xml" in names:
        for prefix, kind in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
            if any(name.startswith(prefix) for name in names):
                return Detected(kind)
        return Detected(None, "an Office Open XML file of unknown kind")
    return Detected(None, "a zip archive (not a document: unpack it first)")


def _ole_type(data: bytes) -> Detected:
    """An OLE compound file: an Outlook .msg, an encrypted Office file or a legacy one."""
    import olefile

    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    except (OSError, ValueError, IndexError, TypeError) as exc:
        return Detected(None, f"a damaged OLE compound file ({_first_line(exc)})")
    tops = {name.split("/")[0] for name in streams}
    if "EncryptedPackage" in tops or "EncryptionInfo" in tops:
        return Detected(None, "encrypted (password-protected Office file): save it unprotected")
    if any(name.startswith("__substg1.0_") for name in tops):
        return Detected("msg")
    if tops & XLS_STREAMS:
        return Detected("xls")
    for stream, reason in LEGACY.items():
        if stream in tops:
            return Detected(None, reason)
    return Detected(None, "an OLE compound file of unknown kind")


def _by_suffix(suffix: str) -> str | None:
    return {
        ".pdf": "pdf",
        ".docx": "docx",
        ".pptx": "pptx",
        ".xlsx": "xlsx",
        ".xlsm": "xlsx",
        ".xls": "xls",
        ".ods": "ods",
        ".html": "html",
        ".htm": "html",
        ".txt": "text",
        ".text": "text",
        ".md": "md",
        ".rtf": "rtf",
        ".eml": "eml",
        ".msg": "msg",
        ".png": "image",
        ".jpg": "image",
        ".jpeg": "image",
        ".tif": "image",
        ".tiff": "image",
    }.get(suffix)


def _same_family(found: Detected, expected: str) -> bool:
    """Text that is also mail or markup: a .txt holding an e-mail is no surprise."""
    return {found.type, expected} <= {"text", "md", "eml", "html"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
