"""Documents of every type docsort ingests, written by the real writers (reportlab, python-docx,
python-pptx, openpyxl, odfpy through pandas, msoffcrypto-tool, pypdf, the ``email`` package),
each holding a sentence the tests look for, plus the hostile ones (corrupt, encrypted, empty,
wrong extension). The tests and ``benchmarks/ingest.py`` build their files with these."""

from __future__ import annotations

import io
import re
from email.message import EmailMessage
from pathlib import Path

WORDS = re.findall(
    r"\w+",
    "quarterly invoice reconciliation shows the warehouse budget exceeded forecasts while the "
    "patent claims describe a rotating valve assembly for hydraulic pumps",
)


def filler(n: int, seed: int = 0) -> str:
    """``n`` words of plain English prose (deterministic) to give a file some body."""
    return " ".join(WORDS[(i * 5 + seed) % len(WORDS)] for i in range(n))


def pdf(path: Path, pages: list[str]) -> Path:
    """A PDF with a text layer: one page per string (lines wrapped by hand)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    sheet = canvas.Canvas(str(path), pagesize=A4)
    for text in pages:
        y = 800
        words = text.split()
        for start in range(0, len(words), 12):
            sheet.drawString(50, y, " ".join(words[start : start + 12]))
            y -= 14
            if y < 40:
                sheet.showPage()
                y = 800
        sheet.showPage()
    sheet.save()
    return path


def text_image(text: str, size: tuple[int, int] = (1654, 600)) -> object:
    """A PIL image of ``text`` in large black letters on white (a 200 dpi scan's size)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, color=255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    y = 60
    for line in text.splitlines():
        draw.text((60, y), line, fill=0, font=font)
        y += 80
    return image


def scanned_pdf(path: Path, text: str, with_text_page: str | None = None) -> Path:
    """A PDF whose (first) page is only an image of ``text``: no text layer, as a scanner
    makes it; ``with_text_page`` adds a second page with a text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    text_image(text).save(buffer, format="PNG")
    buffer.seek(0)
    sheet = canvas.Canvas(str(path), pagesize=A4)
    width, _ = A4
    sheet.drawImage(ImageReader(buffer), 0, 600, width=width, height=width * 600 / 1654)
    sheet.showPage()
    if with_text_page:
        sheet.drawString(50, 800, with_text_page)
        sheet.showPage()
    sheet.save()
    return path


def encrypted_pdf(path: Path, text: str, password: str = "secret") -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = pdf(path.with_suffix(".plain.pdf"), [text])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password=password, owner_password=password + "-owner")
    with path.open("wb") as handle:
        writer.write(handle)
    plain.unlink()
    return path


def docx(path: Path, text: str, table: list[list[str]] | None = None) -> Path:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Report", level=1)
    document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.add_paragraph("Closing paragraph after the table.")
    document.save(str(path))
    return path


def encrypted_docx(path: Path, text: str, password: str = "secret") -> Path:
    import msoffcrypto.format.ooxml as ooxml

    plain = docx(path.with_suffix(".plain.docx"), text)
    with plain.open("rb") as source, path.open("wb") as target:
        ooxml.OOXMLFile(source).encrypt(password, target)
    plain.unlink()
    return path


def pptx(path: Path, slides: list[str], notes: str | None = None) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for number, text in enumerate(slides, start=1):
        slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
        slide.shapes.title.text = f"Slide title {number}"
        box = slide.shapes.add_textbox(Inches(1), Inches(2), Inches(8), Inches(3))
        box.text_frame.text = text
        if notes and number == 1:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))
    return path


def xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(str(path))
    return path


def ods(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    import pandas as pd

    with pd.ExcelWriter(path, engine="odf") as writer:
        for name, rows in sheets.items():
            pd.DataFrame(rows).to_excel(writer, sheet_name=name, header=False, index=False)
    return path


def html(path: Path, text: str) -> Path:
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>A page</title>"
        "<style>body {color: red}</style><script>var hidden = 'script text';</script></head>"
        f"<body><h1>Heading</h1><p>{text}</p><ul><li>first item</li><li>second item</li></ul>"
        "</body></html>",
        encoding="utf-8",
    )
    return path


def rtf(path: Path, text: str) -> Path:
    path.write_text(r"{\rtf1\ansi\deff0 {\fonttbl {\f0 Times;}}\f0\fs24 " + text + r"\par}")
    return path


def eml(
    path: Path, body: str, attachment_text: str, nested_body: str, pdf_bytes: bytes | None = None
) -> Path:
    """A message with a plain/HTML body, a text attachment, an attached message and
    (optionally) a PDF attachment."""
    inner = EmailMessage()
    inner["From"] = "Inner Sender <inner@example.org>"
    inner["To"] = "someone@example.org"
    inner["Subject"] = "Forwarded inner message"
    inner.set_content(nested_body)

    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "Bob Example <bob@example.com>"
    message["Subject"] = "Quarterly figures"
    message["Date"] = "Mon, 07 Dec 2026 09:00:00 +0000"
    message.set_content(body)
    message.add_alternative(f"<html><body><p>{body}</p></body></html>", subtype="html")
    message.add_attachment(attachment_text, filename="notes.txt")
    if pdf_bytes is not None:
        message.add_attachment(
            pdf_bytes, maintype="application", subtype="pdf", filename="report.pdf"
        )
    message.add_attachment(inner)
    path.write_bytes(message.as_bytes())
    return path


def png(path: Path, text: str) -> Path:
    text_image(text).save(path, format="PNG")  # type: ignore[attr-defined]
    return path


def corrupt_pdf(path: Path) -> Path:
    """A PDF header followed by garbage, as a truncated download leaves it."""
    path.write_bytes(
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog" + bytes(range(256)) * 4
    )
    return path


def _utf16(value: str) -> bytes:
    return value.encode("utf-16-le")


def _msg_properties(attachments: int = 0, top: bool = True, entries: bytes = b"") -> bytes:
    """A ``__properties_version1.0`` stream: the header (32 bytes for a message, 24 for an
    embedded one, 8 for an attachment) and 16-byte property entries."""
    import struct

    if top is None:  # an attachment
        return b"\0" * 8 + entries
    counts = struct.pack("<IIII", 0, attachments, 0, attachments)
    return b"\0" * 8 + counts + (b"\0" * 8 if top else b"") + entries


def _msg_fields(writer, prefix: str, subject: str, body: str, header: str | None) -> None:  # noqa: ANN001
    writer.addEntry(f"{prefix}__substg1.0_001A001F", _utf16("IPM.Note"))
    writer.addEntry(f"{prefix}__substg1.0_0037001F", _utf16(subject))
    writer.addEntry(f"{prefix}__substg1.0_1000001F", _utf16(body))
    if header:
        writer.addEntry(f"{prefix}__substg1.0_007D001F", _utf16(header))


def msg(
    path: Path,
    subject: str,
    body: str,
    attachment: tuple[str, bytes] | None = None,
    nested: tuple[str, str] | None = None,
) -> Path:
    """An Outlook .msg (an OLE compound file, written by extract-msg's own OleWriter) with
    transport headers, a plain body, optionally a file attachment and an embedded message
    (``nested``: its subject and body)."""
    import struct

    from extract_msg.ole_writer import OleWriter

    writer = OleWriter()
    header = (
        "From: Alice Example <alice@example.com>\r\nTo: Bob Example <bob@example.com>\r\n"
        f"Subject: {subject}\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\n"
    )
    _msg_fields(writer, "", subject, body, header)
    attachments = [a for a in (attachment, nested) if a is not None]
    writer.addEntry("__properties_version1.0", _msg_properties(len(attachments)))
    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    number = 0
    method = 0x37050003  # PR_ATTACH_METHOD, a 32-bit integer: 1 by value, 5 an embedded message
    if attachment is not None:
        name, data = attachment
        storage = f"__attach_version1.0_#{number:08X}"
        writer.addEntry(storage, storage=True)
        entry = struct.pack("<IIii", method, 6, 1, 0)
        writer.addEntry(
            f"{storage}/__properties_version1.0", _msg_properties(top=None, entries=entry)
        )
        writer.addEntry(f"{storage}/__substg1.0_37010102", data)
        writer.addEntry(f"{storage}/__substg1.0_3707001F", _utf16(name))
        number += 1
    if nested is not None:
        storage = f"__attach_version1.0_#{number:08X}"
        writer.addEntry(storage, storage=True)
        entry = struct.pack("<IIii", method, 6, 5, 0)
        writer.addEntry(
            f"{storage}/__properties_version1.0", _msg_properties(top=None, entries=entry)
        )
        writer.addEntry(f"{storage}/__substg1.0_3707001F", _utf16("forwarded.msg"))
        inner = f"{storage}/__substg1.0_3701000D"
        writer.addEntry(inner, storage=True)
        _msg_fields(writer, inner + "/", nested[0], nested[1], None)
        writer.addEntry(f"{inner}/__properties_version1.0", _msg_properties(top=False))
    writer.write(str(path))
    return path


def xls(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A legacy Excel 97-2003 workbook (an OLE file), written by xlwt."""
    import xlwt

    book = xlwt.Workbook()
    for name, rows in sheets.items():
        sheet = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
    book.save(str(path))
    return path
