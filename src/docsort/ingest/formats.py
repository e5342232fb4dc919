"""Extractors for Office files, spreadsheets (XLSX, XLS, ODS), HTML, plain text, RTF, images.

PDF is in ``docsort.ingest.pdf``, e-mail (EML, Outlook MSG) in ``docsort.ingest.mail``; each
library is imported inside its extractor, so reading a folder of text files loads none of them.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from docsort.ingest.extract import (
    Context,
    Part,
    Unreadable,
    check_pages,
    check_zip,
    decode_text,
    register_extractor,
)


@register_extractor("text", "md")
def extract_text(data: bytes, context: Context) -> Part:
    return Part(decode_text(data))


@register_extractor("rtf")
def extract_rtf(data: bytes, context: Context) -> Part:
    from striprtf.striprtf import rtf_to_text

    return Part(rtf_to_text(decode_text(data), errors="ignore"))


@register_extractor("docx")
def extract_docx(data: bytes, context: Context) -> Part:
    """Paragraphs and tables in body order (a table row as its cells joined by tabs), then
    the headers and footers of the first section."""
    check_zip(data, context)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            lines.append(block.text)
        elif isinstance(block, Table):
            lines.extend(_table_lines(block))
    for section in document.sections[:1]:
        for part in (section.header, section.footer):
            if not part.is_linked_to_previous:
                lines.extend(p.text for p in part.paragraphs if p.text.strip())
    return Part("\n".join(lines))


def _table_lines(table) -> list[str]:  # noqa: ANN001 (python-docx's Table)
    lines = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = cell.text.strip()
            if not cells or cells[-1] != text:  # a merged cell repeats across its span
                cells.append(text)
        lines.append("\t".join(cells))
    return lines


@register_extractor("pptx")
def extract_pptx(data: bytes, context: Context) -> Part:
    """Each slide's text frames and tables (grouped shapes too), then its notes."""
    check_zip(data, context)
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    check_pages(len(slides), context, "slides")
    chunks = []
    for number, slide in enumerate(slides, start=1):
        lines = [f"## Slide {number}"]
        for shape in slide.shapes:
            lines.extend(_shape_lines(shape))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                lines.append(notes.text)
        chunks.append("\n".join(lines))
    return Part("\n\n".join(chunks), pages=len(slides))


def _shape_lines(shape) -> list[str]:  # noqa: ANN001 (python-pptx's shapes)
    lines: list[str] = []
    if getattr(shape, "shapes", None) is not None:  # a group
        for inner in shape.shapes:
            lines.extend(_shape_lines(inner))
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines.append(shape.text_frame.text)
    if getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            lines.append("\t".join(cell.text.strip() for cell in row.cells))
    return lines


@register_extractor("xlsx", "xls", "ods")
def extract_spreadsheet(data: bytes, context: Context) -> Part:
    """Sheet by sheet (``## Sheet: name``), a row as its non-empty cells joined by tabs;
    values as the file last computed them. Read with calamine (Rust, through
    python-calamine): XLSX, legacy XLS and ODS alike, ~100x faster than openpyxl here."""
    if data[:4] == b"PK\x03\x04":
        check_zip(data, context)
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    try:
        names = list(book.sheet_names)
        check_pages(len(names), context, "sheets")
        budget = context.limits.max_cells
        chunks = []
        for name in names:
            sheet = book.get_sheet_by_name(name)
            budget -= sheet.height * sheet.width
            if budget < 0:
                raise Unreadable(f"has more than {context.limits.max_cells:,} cells (--max-cells)")
            lines = [f"## Sheet: {name}"]
            for row in sheet.to_python(skip_empty_area=True):
                cells = [_cell(value) for value in row if value not in (None, "")]
                cells = [c for c in cells if c]
                if cells:
                    lines.append("\t".join(cells))
            chunks.append("\n".join(lines))
    finally:
        book.close()
    return Part("\n\n".join(chunks), pages=len(chunks))


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# ----------------------------------------------------------------------------- HTML

BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "header", "footer", "blockquote", "pre", "hr", "title", "dt", "dd",
    "address", "aside", "nav", "main", "figure", "figcaption", "form", "td", "th",
}  # fmt: skip
SKIPPED_TAGS = {"script", "style", "noscript", "template", "head", "svg", "object", "iframe"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


class _TextParser(HTMLParser):
    """The visible text of a page: script and style dropped, blocks on lines of their own,
    the title kept (it sits in the skipped head)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.in_title = False
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        if tag == "title":
            self.in_title = True
        elif tag in SKIPPED_TAGS:
            self.skipping += 1
        if tag in BLOCK_TAGS:
            self.out.append("\n")
        if tag in ("td", "th"):
            self.out.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in SKIPPED_TAGS and self.skipping:
            self.skipping -= 1
        if tag in BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skipping:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    body = "".join(parser.out)
    lines = [" ".join(line.split()) for line in body.split("\n")]
    text = "\n".join(line for line in lines if line)
    title = " ".join(parser.title.split())
    return f"{title}\n{text}" if title and not text.startswith(title) else text


@register_extractor("html")
def extract_html(data: bytes, context: Context) -> Part:
    match = _META_CHARSET.search(data[:4096])
    markup = None
    if match:
        try:
            markup = data.decode(match.group(1).decode("ascii"), errors="replace")
        except LookupError:
            markup = None
    return Part(html_to_text(markup if markup is not None else decode_text(data)))


# ----------------------------------------------------------------------------- images


@register_extractor("image")
def extract_image(data: bytes, context: Context) -> Part:
    """A scanned page as an image file: OCR when tesseract is installed."""
    from docsort.ingest import ocr

    if not context.limits.ocr:
        raise Unreadable("an image: needs OCR (turned off)")
    if not ocr.available():
        raise Unreadable(f"an image: needs OCR, {ocr.MISSING}")
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Unreadable(f"a damaged image ({type(exc).__name__})") from None
    context.ocr_pages += 1
    return Part(ocr.image_to_text(image, context.limits))
