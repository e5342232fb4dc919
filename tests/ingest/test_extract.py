"""Extraction of every supported type from files made by the real writers, the hostile ones
(corrupt, encrypted, empty, wrong extension, zip bomb, a FIFO that never answers) as one-line
reasons, and OCR both with tesseract and without it."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from docsort.ingest import Limits, extract_bytes, extract_file, run_jobs
from docsort.ingest.ocr import available as ocr_available
from tests.ingest import samples

HAS_TESSERACT = shutil.which("tesseract") is not None
needs_tesseract = pytest.mark.skipif(not HAS_TESSERACT, reason="tesseract is not installed")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("docs")
    samples.pdf(d / "report.pdf", ["Hydraulic valve assembly report.", "Second page: pumps."])
    samples.docx(
        d / "memo.docx", "Budget memo for the warehouse.", [["item", "cost"], ["valve", "12"]]
    )
    samples.pptx(d / "deck.pptx", ["Roadmap slide text", "Risks slide text"], notes="Speaker notes")
    samples.xlsx(
        d / "book.xlsx", {"Costs": [["item", "amount"], ["pump", 3.5]], "Staff": [["Ada"]]}
    )
    samples.ods(d / "sheet.ods", {"Plan": [["phase", "weeks"], ["design", 4]]})
    samples.xls(d / "legacy.xls", {"Old": [["part", "price"], ["seal", 2.25]]})
    samples.html(d / "page.html", "Visible paragraph text")
    (d / "notes.txt").write_text("Plain text notes about invoices.", encoding="utf-8")
    (d / "readme.md").write_text("# Title\n\nMarkdown body.", encoding="utf-8")
    samples.rtf(d / "letter.rtf", "Rich text letter body")
    samples.eml(
        d / "mail.eml",
        body="The body of the mail.",
        attachment_text="Attached notes text.",
        nested_body="Nested message body.",
        pdf_bytes=(d / "report.pdf").read_bytes(),
    )
    samples.msg(
        d / "outlook.msg",
        "Quarterly figures",
        "The body of the Outlook message.",
        attachment=("notes.txt", b"Attached notes text."),
        nested=("Inner subject", "Inner body text."),
    )
    samples.corrupt_pdf(d / "corrupt.pdf")
    samples.encrypted_pdf(d / "locked.pdf", "secret text")
    samples.encrypted_docx(d / "locked.docx", "secret text")
    (d / "empty.txt").write_bytes(b"")
    (d / "really-a-pdf.txt").write_bytes((d / "report.pdf").read_bytes())
    (d / "fake.pdf").write_bytes(b"just some text, not a PDF at all")
    with zipfile.ZipFile(d / "archive.zip", "w") as archive:
        archive.writestr("inner.txt", "zipped")
    (d / "blob.bin").write_bytes(bytes(range(256)) * 8)
    return d


def read(folder: Path, name: str, **limits: object):
    return extract_file(str(folder / name), Limits(**limits))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kind", "pages", "expected"),
    [
        ("report.pdf", "pdf", 2, ["Hydraulic valve assembly report.", "Second page: pumps."]),
        ("memo.docx", "docx", 1, ["Budget memo for the warehouse.", "valve\t12", "Closing"]),
        ("deck.pptx", "pptx", 2, ["Roadmap slide text", "Risks slide text", "Speaker notes"]),
        ("book.xlsx", "xlsx", 2, ["## Sheet: Costs", "pump\t3.5", "## Sheet: Staff", "Ada"]),
        ("sheet.ods", "ods", 1, ["## Sheet: Plan", "design\t4"]),
        ("legacy.xls", "xls", 1, ["## Sheet: Old", "seal\t2.25"]),
        ("page.html", "html", 1, ["A page", "Heading", "Visible paragraph text", "second item"]),
        ("notes.txt", "text", 1, ["Plain text notes about invoices."]),
        ("readme.md", "md", 1, ["Markdown body."]),
        ("letter.rtf", "rtf", 1, ["Rich text letter body"]),
    ],
)
def test_each_type_is_read_by_content(
    folder: Path, name: str, kind: str, pages: int, expected: list[str]
) -> None:
    result = read(folder, name)
    assert (result.type, result.error, result.pages) == (kind, "", pages)
    for piece in expected:
        assert piece in result.text


def test_the_language_is_told_when_there_is_enough_text() -> None:
    german = "Die Rechnung für die Hydraulikpumpe ist beigefügt, bitte bis Freitag bezahlen."
    assert extract_bytes(german.encode(), "r.txt", Limits()).language == "de"
    english = "The invoice for the hydraulic pump is attached; please pay it by Friday."
    assert extract_bytes(english.encode(), "r.txt", Limits()).language == "en"
    assert extract_bytes(b"INV-2024-0042 12.50", "n.txt", Limits()).language == ""


def test_html_drops_scripts_and_styles(folder: Path) -> None:
    text = read(folder, "page.html").text
    assert "script text" not in text and "color: red" not in text


def test_an_email_gives_headers_body_attachments_and_the_nested_message(folder: Path) -> None:
    result = read(folder, "mail.eml")
    assert result.type == "eml" and result.error == ""
    text = result.text
    assert "From: Alice Example <alice@example.com>" in text
    assert "Subject: Quarterly figures" in text
    assert text.count("The body of the mail.") == 1  # the plain part, not also the HTML one
    assert "--- attachment: notes.txt ---\nAttached notes text." in text
    assert "--- attachment: report.pdf ---\nHydraulic valve assembly report." in text
    assert "--- attached message ---\nFrom: Inner Sender" in text
    assert "Nested message body." in text


def test_an_outlook_message_gives_headers_body_attachment_and_embedded_message(
    folder: Path,
) -> None:
    result = read(folder, "outlook.msg")
    assert result.type == "msg" and result.error == ""
    assert result.text.startswith(
        "From: Alice Example <alice@example.com>\nTo: Bob Example <bob@example.com>\n"
        "Date: Mon, 07 Dec 2026 09:00:00 +0000\nSubject: Quarterly figures\n\n"
        "The body of the Outlook message."
    )
    assert "--- attachment: notes.txt ---\nAttached notes text." in result.text
    assert "--- attached message ---\nSubject: Inner subject\n\nInner body text." in result.text


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("corrupt.pdf", "a damaged PDF (PDFium: Data format error)"),
        ("locked.pdf", "encrypted (password-protected PDF)"),
        ("locked.docx", "encrypted (password-protected Office file): save it unprotected"),
        ("empty.txt", "empty file"),
        ("archive.zip", "a zip archive (not a document: unpack it first)"),
        ("blob.bin", "a binary file of unknown type (not a document docsort reads)"),
    ],
)
def test_bad_files_get_a_one_line_reason(folder: Path, name: str, reason: str) -> None:
    result = read(folder, name)
    assert result.error == reason
    assert result.text == ""


def test_the_content_decides_not_the_extension(folder: Path) -> None:
    pdf_as_txt = read(folder, "really-a-pdf.txt")
    assert pdf_as_txt.type == "pdf" and "Hydraulic valve" in pdf_as_txt.text
    assert pdf_as_txt.notes == ["the extension says text, the content is pdf"]
    text_as_pdf = read(folder, "fake.pdf")
    assert text_as_pdf.type == "text" and text_as_pdf.text.startswith("just some text")
    assert text_as_pdf.notes == ["the extension says pdf, the content is text"]


def test_limits_bytes_pages_and_chars(folder: Path) -> None:
    big = read(folder, "report.pdf", max_bytes=2**20 // 1024)
    assert big.error.endswith("MB, over the limit of 0.000977 MB (--max-mb)") and big.type is None
    assert read(folder, "report.pdf", max_pages=1).error == (
        "has 2 pages, over the limit of 1 (--max-pages)"
    )
    assert read(folder, "deck.pptx", max_pages=1).error.startswith("has 2 slides")
    cut = read(folder, "notes.txt", max_chars=10)
    assert cut.text == "Plain text" and cut.notes == [
        "text cut to its first 10 characters (--max-chars)"
    ]


def test_a_zip_bomb_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (60 * 2**20))  # 60 MB of zeros
    assert bomb.stat().st_size < 2**20
    result = extract_file(str(bomb), Limits(max_unpacked_mb=40))
    assert result.error == "unpacks to 60 MB, over the limit of 40 MB (--max-unpacked-mb)"
    assert extract_file(str(bomb), Limits()).error.startswith("a zip bomb:")


def test_a_file_that_never_answers_is_stopped_at_the_time_limit(
    folder: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "stuck.txt"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: none will
    # 5 s, not 1: a fresh worker importing the Word parser took over 1 s on a loaded CI machine
    jobs = [(0, str(fifo)), (1, str(folder / "notes.txt")), (2, str(folder / "memo.docx"))]
    done = {d.key: d.result for d in run_jobs(jobs, Limits(max_seconds=5.0), workers=2)}
    assert done[0].error == "took over 5 s (--max-seconds): stopped"
    assert done[1].text == "Plain text notes about invoices."
    assert "Budget memo" in done[2].text


@needs_tesseract
def test_a_scanned_page_is_read_by_ocr(tmp_path: Path) -> None:
    samples.scanned_pdf(tmp_path / "scan.pdf", "SCANNED INVOICE\nTotal due 420 euros", "Typed page")
    result = extract_file(str(tmp_path / "scan.pdf"), Limits())
    assert result.error == "" and result.ocr_pages == 1 and result.pages == 2
    assert "SCANNED INVOICE" in result.text and "420 euros" in result.text
    assert "Typed page" in result.text
    image = extract_bytes(
        samples.png(tmp_path / "s.png", "HELLO OCR WORLD").read_bytes(), "s.png", Limits()
    )
    assert image.type == "image" and "HELLO OCR WORLD" in image.text


def test_without_tesseract_a_scanned_page_needs_ocr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no tesseract at this path: the same as a machine without the Debian package
    monkeypatch.setenv("DOCSORT_TESSERACT", str(tmp_path / "no-such-tesseract"))
    assert not ocr_available()
    only = samples.scanned_pdf(tmp_path / "scan.pdf", "SCANNED")
    result = extract_file(str(only), Limits())
    assert result.error.startswith("needs OCR: the page has no text layer and tesseract is not")
    mixed = samples.scanned_pdf(tmp_path / "mixed.pdf", "SCANNED", with_text_page="Typed page")
    result = extract_file(str(mixed), Limits())
    assert result.error == "" and result.text == "Typed page"
    assert result.notes[0].startswith("needs OCR: page 1 of 2 has no text layer")
    assert extract_file(str(only), Limits(ocr=False)).error.endswith("OCR is turned off")
