"""PDF: the text layer with pypdfium2 (PDFium, Chrome's PDF engine), page by page; a page
with no text but an image is a scan, read by OCR when tesseract is installed and otherwise
listed in the row's note ("needs OCR: page 2"). pypdfium2 was chosen by measurement over
pypdf, pdfplumber and pdfminer.six (docs/ingest.md: the same words on the same files, 20-70x
faster; pdfplumber glues words together on real files).
"""

from __future__ import annotations

from docsort.ingest import ocr
from docsort.ingest.extract import Context, Part, Unreadable, check_pages, register_extractor

MIN_PAGE_CHARS = 3  # fewer visible characters than this on a page with an image: a scan
MAX_RENDER_PIXELS = 40_000_000  # an OCR render of a (hostile) huge page is scaled down to this


@register_extractor("pdf")
def extract_pdf(data: bytes, context: Context) -> Part:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise Unreadable("encrypted (password-protected PDF)") from None
        raise Unreadable(f"a damaged PDF ({_reason(exc)})") from None
    try:
        pages = len(document)
        check_pages(pages, context)
        use_ocr = context.limits.ocr and ocr.available()
        texts, scanned = [], []
        for index in range(pages):
            page = document[index]
            try:
                text = _page_text(page)
                if len(text.strip()) < MIN_PAGE_CHARS and _has_image(page, pdfium_c):
                    if use_ocr:
                        text = _ocr_page(page, context)
                        context.ocr_pages += 1
                    else:
                        scanned.append(index + 1)
                texts.append(text)
            finally:
                page.close()
    finally:
        document.close()
    if scanned:
        why = "OCR is turned off" if not context.limits.ocr else ocr.MISSING
        context.note(f"needs OCR: {_pages(scanned, pages)} no text layer and {why}")
    return Part("\n\n".join(texts), pages=pages)


def _page_text(page) -> str:  # noqa: ANN001 (a PdfPage)
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()


def _has_image(page, pdfium_c) -> bool:  # noqa: ANN001
    for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=4):
        return True
    return False


def _ocr_page(page, context: Context) -> str:  # noqa: ANN001
    width, height = page.get_size()  # points, 1/72 inch
    scale = context.limits.ocr_dpi / 72
    pixels = width * height * scale * scale
    if pixels > MAX_RENDER_PIXELS:
        scale *= (MAX_RENDER_PIXELS / pixels) ** 0.5
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        return ocr.image_to_text(bitmap.to_pil(), context.limits)
    finally:
        bitmap.close()


def _pages(numbers: list[int], total: int) -> str:
    if len(numbers) == total:
        return f"all {total} page(s) have" if total > 1 else "the page has"
    shown = ", ".join(str(n) for n in numbers[:10]) + (" ..." if len(numbers) > 10 else "")
    if len(numbers) == 1:
        return f"page {shown} of {total} has"
    return f"pages {shown} of {total} have"


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.removeprefix("Failed to load document ").strip("(). ") or type(exc).__name__
